output "vnet_id" {
  description = "ID of the VNet (private DNS zones link to it)."
  value       = azurerm_virtual_network.this.id
}

output "vnet_name" {
  description = "Name of the VNet."
  value       = azurerm_virtual_network.this.name
}

output "aks_subnet_id" {
  description = "Subnet ID for the AKS node pool."
  value       = azurerm_subnet.aks.id
}

output "postgres_subnet_id" {
  description = "Delegated subnet ID for PostgreSQL Flexible Server."
  value       = azurerm_subnet.postgres.id
  # The NSG must be attached before the server is placed in the subnet.
  depends_on = [azurerm_subnet_network_security_group_association.postgres]
}

output "endpoints_subnet_id" {
  description = "Subnet ID for private endpoints."
  value       = azurerm_subnet.endpoints.id
  depends_on  = [azurerm_subnet_network_security_group_association.endpoints]
}

output "postgres_subnet_cidr" {
  description = "CIDR of the PostgreSQL subnet (NetworkPolicy egress)."
  value       = var.postgres_subnet_cidr
}

output "endpoints_subnet_cidr" {
  description = "CIDR of the private endpoint subnet (NetworkPolicy egress to Key Vault)."
  value       = var.endpoints_subnet_cidr
}
