output "cluster_name" {
  description = "Name of the AKS cluster (az aks get-credentials --name)."
  value       = azurerm_kubernetes_cluster.this.name
}

output "cluster_id" {
  description = "ID of the AKS cluster."
  value       = azurerm_kubernetes_cluster.this.id
}

output "kubelet_client_id" {
  description = "Client ID of the kubelet managed identity: the server's AZURE_CLIENT_ID."
  value       = azurerm_kubernetes_cluster.this.kubelet_identity[0].client_id
}

output "kubelet_object_id" {
  description = "Object (principal) ID of the kubelet identity, for role assignments."
  value       = azurerm_kubernetes_cluster.this.kubelet_identity[0].object_id
}

output "node_resource_group" {
  description = "Resource group AKS manages for nodes and load balancers."
  value       = azurerm_kubernetes_cluster.this.node_resource_group
}

output "public_ip_name" {
  description = "Name of the static public IP (Service annotation azure-pip-name)."
  value       = azurerm_public_ip.service.name
}

output "public_ip_resource_group" {
  description = "Resource group of the static public IP (Service annotation azure-load-balancer-resource-group)."
  value       = azurerm_public_ip.service.resource_group_name
}

output "public_ip_address" {
  description = "The service's public IPv4 address."
  value       = azurerm_public_ip.service.ip_address
}

output "public_fqdn" {
  description = "DNS name of the public IP."
  value       = azurerm_public_ip.service.fqdn
}

output "workload_client_id" {
  description = "Client ID of paytrackr's Workload Identity (the ServiceAccount annotation azure.workload.identity/client-id), or \"\" when disabled."
  value       = one(azurerm_user_assigned_identity.workload[*].client_id) == null ? "" : one(azurerm_user_assigned_identity.workload[*].client_id)
}

output "workload_object_id" {
  description = "Object (principal) ID of paytrackr's Workload Identity, or null when disabled."
  value       = one(azurerm_user_assigned_identity.workload[*].principal_id)
}

output "oidc_issuer_url" {
  description = "The cluster's OIDC issuer (Workload Identity), or null when disabled."
  value       = azurerm_kubernetes_cluster.this.oidc_issuer_url
}

output "monitor_workspace_id" {
  description = "Azure Monitor workspace holding the Prometheus metrics (query it from Azure Managed Grafana), or null."
  value       = one(azurerm_monitor_workspace.this[*].id)
}
