# One VNet, three subnets: AKS nodes, PostgreSQL (delegated, private access
# only) and private endpoints. Nothing here is reachable from the internet;
# the only public entry is the AKS LoadBalancer.

resource "azurerm_virtual_network" "this" {
  name                = "${var.name}-vnet"
  resource_group_name = var.resource_group_name
  location            = var.location
  address_space       = var.address_space
  tags                = var.tags
}

resource "azurerm_subnet" "aks" {
  name                 = "aks-nodes"
  resource_group_name  = var.resource_group_name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [var.aks_subnet_cidr]
}

resource "azurerm_subnet" "postgres" {
  name                 = "postgres"
  resource_group_name  = var.resource_group_name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [var.postgres_subnet_cidr]

  # Flexible Server with private access lives inside this subnet; Azure
  # requires the subnet to be delegated to it and to hold nothing else.
  delegation {
    name = "postgres-flexible-server"
    service_delegation {
      name    = "Microsoft.DBforPostgreSQL/flexibleServers"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_subnet" "endpoints" {
  name                 = "private-endpoints"
  resource_group_name  = var.resource_group_name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [var.endpoints_subnet_cidr]

  # Let the NSG below apply to private endpoint traffic too.
  private_endpoint_network_policies = "Enabled"
}

# Defence in depth beside the Kubernetes NetworkPolicy: the database and the
# private endpoints accept connections from the AKS node subnet only. Pod
# traffic leaves the Azure CNI Overlay with the node's address, so the node
# subnet is the right source.
resource "azurerm_network_security_group" "postgres" {
  name                = "${var.name}-postgres-nsg"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags

  security_rule {
    name                       = "allow-postgres-from-aks"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_address_prefix      = var.aks_subnet_cidr
    source_port_range          = "*"
    destination_address_prefix = var.postgres_subnet_cidr
    destination_port_range     = "5432"
  }

  # Zone-redundant high availability: the primary and the standby, both in
  # this subnet, replicate over 5432 and 6432 (PgBouncer). Without these
  # rules the deny below cuts them off and the HA setup fails.
  security_rule {
    name                       = "allow-postgres-intra-subnet-in"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_address_prefix      = var.postgres_subnet_cidr
    source_port_range          = "*"
    destination_address_prefix = var.postgres_subnet_cidr
    destination_port_ranges    = ["5432", "6432"]
  }

  security_rule {
    name                       = "allow-postgres-intra-subnet-out"
    priority                   = 110
    direction                  = "Outbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_address_prefix      = var.postgres_subnet_cidr
    source_port_range          = "*"
    destination_address_prefix = var.postgres_subnet_cidr
    destination_port_ranges    = ["5432", "6432"]
  }

  security_rule {
    name                       = "deny-other-vnet-inbound"
    priority                   = 4000
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_address_prefix      = "VirtualNetwork"
    source_port_range          = "*"
    destination_address_prefix = "*"
    destination_port_range     = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "postgres" {
  subnet_id                 = azurerm_subnet.postgres.id
  network_security_group_id = azurerm_network_security_group.postgres.id
}

resource "azurerm_network_security_group" "endpoints" {
  name                = "${var.name}-endpoints-nsg"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags

  security_rule {
    name                       = "allow-https-from-aks"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_address_prefix      = var.aks_subnet_cidr
    source_port_range          = "*"
    destination_address_prefix = var.endpoints_subnet_cidr
    destination_port_range     = "443"
  }

  security_rule {
    name                       = "deny-other-vnet-inbound"
    priority                   = 4000
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_address_prefix      = "VirtualNetwork"
    source_port_range          = "*"
    destination_address_prefix = "*"
    destination_port_range     = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "endpoints" {
  subnet_id                 = azurerm_subnet.endpoints.id
  network_security_group_id = azurerm_network_security_group.endpoints.id
}
