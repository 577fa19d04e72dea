variable "name" {
  description = "Cluster name; also the DNS prefix of the API server."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the cluster, its control-plane identity and the service's public IP."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "tenant_id" {
  description = "Entra ID tenant used for Kubernetes RBAC."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version, e.g. \"1.33\" (null: AKS default). The manifests need 1.30 or later (preStop sleep action)."
  type        = string
  default     = null
}

variable "sku_tier" {
  description = "Free (no API server SLA) for dev, Standard for production."
  type        = string
  default     = "Standard"
}

variable "aks_subnet_id" {
  description = "Subnet of the nodes (network module)."
  type        = string
}

variable "zones" {
  description = "Availability zones: one user pool per zone, the system pool across them; the Deployment spreads replicas across them."
  type        = list(string)
  default     = ["1", "2", "3"]
}

variable "node_vm_size" {
  description = "VM size of the user pools' nodes (paytrackr's pods)."
  type        = string
  default     = "Standard_D4ds_v5"
}

variable "node_min_count_per_zone" {
  description = "Minimum nodes of each zone's user pool (paytrackr runs there)."
  type        = number
  default     = 1
}

variable "node_max_count_per_zone" {
  description = "Maximum nodes of each zone's user pool."
  type        = number
  default     = 3
}

variable "system_node_vm_size" {
  description = "VM size of the system pool (cluster add-ons only; one node per zone, up to two)."
  type        = string
  default     = "Standard_D2ds_v5"
}

variable "maintenance_day" {
  description = "Weekday of the automatic Kubernetes patch upgrades' window (UTC)."
  type        = string
  default     = "Sunday"
}

variable "maintenance_node_os_day" {
  description = "Weekday of the automatic node image upgrades' window (UTC)."
  type        = string
  default     = "Monday"
}

variable "maintenance_start_time" {
  description = "Start (HH:MM, UTC) of the 4-hour maintenance windows."
  type        = string
  default     = "02:00"
}

variable "enable_managed_prometheus" {
  description = "Enable AKS managed Prometheus (ama-metrics, with an Azure Monitor workspace): it provides the PodMonitor CRD the manifests use and stores paytrackr's metrics."
  type        = bool
  default     = true
}

variable "enable_workload_identity" {
  description = "Enable the OIDC issuer and Workload Identity, and create paytrackr's own federated identity (the kubelet identity stays the default)."
  type        = bool
  default     = false
}

variable "workload_namespace" {
  description = "Namespace of paytrackr's ServiceAccount (federated credential subject)."
  type        = string
  default     = "paytrackr"
}

variable "workload_service_account" {
  description = "Name of paytrackr's ServiceAccount (federated credential subject)."
  type        = string
  default     = "paytrackr"
}

variable "pod_cidr" {
  description = "Azure CNI Overlay pod range; must not overlap the VNet."
  type        = string
  default     = "10.244.0.0/16"
}

variable "service_cidr" {
  description = "Kubernetes service range; must not overlap the VNet or pod range."
  type        = string
  default     = "10.41.0.0/16"
}

variable "dns_service_ip" {
  description = "Cluster DNS address inside service_cidr."
  type        = string
  default     = "10.41.0.10"
}

variable "admin_object_ids" {
  description = "Entra ID users or groups given Azure Kubernetes Service RBAC Cluster Admin (the operator running kubectl)."
  type        = list(string)
}

variable "api_server_authorized_ip_ranges" {
  description = "CIDRs allowed to reach the API server; empty allows any (authentication still applies)."
  type        = list(string)
  default     = []
}

variable "acr_id" {
  description = "Container registry the kubelet identity may pull from (AcrPull), or null."
  type        = string
  default     = null
}

variable "enable_keyvault_csi" {
  description = "Enable the Key Vault Secrets Store CSI driver add-on (for the keyvault-csi Kustomize component)."
  type        = bool
  default     = false
}

variable "public_ip_dns_label" {
  description = "DNS label of the service's static public IP: <label>.<region>.cloudapp.azure.com (the TLS certificate's name, or a CNAME target)."
  type        = string
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
