# AKS with managed identities only (no service principal secrets), nodes in
# the network module's subnet, Azure CNI Overlay with the Cilium data plane
# (which enforces the NetworkPolicy), Entra ID authentication with Azure
# RBAC and local accounts off.

# User-assigned control-plane identity, so its rights on the subnet and the
# public IP exist before the cluster is created.
resource "azurerm_user_assigned_identity" "control_plane" {
  name                = "${var.name}-control-plane"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

# Joining nodes to a subnet we own, and attaching the load balancer to the
# static public IP below, both need Network Contributor.
resource "azurerm_role_assignment" "control_plane_subnet" {
  scope                = var.aks_subnet_id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
}

# The cloud provider looks the public IP up in its resource group (annotation
# azure-load-balancer-resource-group), so the grant is on that group.
resource "azurerm_role_assignment" "control_plane_public_ip" {
  scope                = var.resource_group_id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
}

# Static public IP for the paytrackr LoadBalancer Service (annotation
# azure-pip-name), so the address and DNS name survive re-creating the
# Service or the cluster. Zone-redundant like the nodes.
resource "azurerm_public_ip" "service" {
  name                = "${var.name}-paytrackr-pip"
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = "Standard"
  allocation_method   = "Static"
  zones               = var.zones
  domain_name_label   = var.public_ip_dns_label
  tags                = var.tags
}

resource "azurerm_kubernetes_cluster" "this" {
  name                = var.name
  resource_group_name = var.resource_group_name
  location            = var.location
  dns_prefix          = var.name
  kubernetes_version  = var.kubernetes_version
  sku_tier            = var.sku_tier
  node_resource_group = "${var.resource_group_name}-${var.name}-nodes"

  automatic_upgrade_channel = "patch"
  node_os_upgrade_channel   = "NodeImage"

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.control_plane.id]
  }
  # The kubelet identity is left to AKS to create; its client id is the
  # AZURE_CLIENT_ID of the server (see outputs).

  local_account_disabled = true
  azure_active_directory_role_based_access_control {
    tenant_id          = var.tenant_id
    azure_rbac_enabled = true
  }

  dynamic "api_server_access_profile" {
    for_each = length(var.api_server_authorized_ip_ranges) > 0 ? [1] : []
    content {
      authorized_ip_ranges = var.api_server_authorized_ip_ranges
    }
  }

  default_node_pool {
    name                 = "system"
    vm_size              = var.node_vm_size
    vnet_subnet_id       = var.aks_subnet_id
    zones                = var.zones
    auto_scaling_enabled = true
    min_count            = var.node_min_count
    max_count            = var.node_max_count
    os_sku               = "AzureLinux"
    max_pods             = 110
    # Rebuilding the pool (e.g. a VM size change) goes through this name.
    temporary_name_for_rotation = "systemtmp"

    upgrade_settings {
      max_surge = "33%"
      # Give pods' preStop + WebSocket drain time before a node goes.
      drain_timeout_in_minutes      = 10
      node_soak_duration_in_minutes = 0
    }
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
    pod_cidr            = var.pod_cidr
    service_cidr        = var.service_cidr
    dns_service_ip      = var.dns_service_ip
    load_balancer_sku   = "standard"
    outbound_type       = "loadBalancer"
  }

  dynamic "key_vault_secrets_provider" {
    for_each = var.enable_keyvault_csi ? [1] : []
    content {
      secret_rotation_enabled  = true
      secret_rotation_interval = "2m"
    }
  }

  tags = var.tags

  depends_on = [
    azurerm_role_assignment.control_plane_subnet,
    azurerm_role_assignment.control_plane_public_ip,
  ]

  lifecycle {
    # The autoscaler owns the node count; patch upgrades move the version.
    ignore_changes = [default_node_pool[0].node_count, kubernetes_version]
  }
}

resource "azurerm_role_assignment" "admins" {
  for_each             = toset(var.admin_object_ids)
  scope                = azurerm_kubernetes_cluster.this.id
  role_definition_name = "Azure Kubernetes Service RBAC Cluster Admin"
  principal_id         = each.value
}

resource "azurerm_role_assignment" "kubelet_acr_pull" {
  count                = var.acr_id == null ? 0 : 1
  scope                = var.acr_id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_kubernetes_cluster.this.kubelet_identity[0].object_id
  principal_type       = "ServicePrincipal"
}
