variable "subscription_id" {
  description = "Azure subscription to deploy into."
  type        = string
}

variable "environment" {
  description = "Environment name, part of every resource name (dev, prod)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lower-case letters or digits, starting with a letter."
  }
}

variable "location" {
  description = "Azure region; pick one with three availability zones."
  type        = string
  default     = "westeurope"
}

variable "unique_suffix" {
  description = "Short lower-case suffix that makes the globally unique names (Key Vault, registry, PostgreSQL, DNS label) unique to you."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]{3,8}$", var.unique_suffix))
    error_message = "unique_suffix must be 3-8 lower-case letters or digits."
  }
}

variable "admin_object_ids" {
  description = "Entra ID users or groups that administer the cluster. Defaults to the identity running Terraform when empty."
  type        = list(string)
  default     = []
}

variable "allowed_ip_ranges" {
  description = "Public CIDRs of the machines running Terraform and kubectl: they reach the Key Vault firewall and the AKS API server."
  type        = list(string)
}

variable "address_space" {
  description = "VNet address space."
  type        = list(string)
  default     = ["10.40.0.0/16"]
}

variable "aks_subnet_cidr" {
  description = "AKS node subnet."
  type        = string
  default     = "10.40.0.0/20"
}

variable "postgres_subnet_cidr" {
  description = "PostgreSQL delegated subnet."
  type        = string
  default     = "10.40.16.0/24"
}

variable "endpoints_subnet_cidr" {
  description = "Private endpoint subnet."
  type        = string
  default     = "10.40.17.0/24"
}

variable "kubernetes_version" {
  description = "AKS Kubernetes minor version (1.30 or later), or null for the AKS default."
  type        = string
  default     = null
}

variable "aks_sku_tier" {
  description = "Free or Standard (API server SLA)."
  type        = string
  default     = "Standard"
}

variable "zones" {
  description = "Availability zones for nodes and the public IP."
  type        = list(string)
  default     = ["1", "2", "3"]
}

variable "node_vm_size" {
  description = "VM size of the user pools' nodes (where paytrackr runs)."
  type        = string
  default     = "Standard_D4ds_v5"
}

variable "node_min_count_per_zone" {
  description = "Minimum nodes of each zone's user pool."
  type        = number
  default     = 1
}

variable "node_max_count_per_zone" {
  description = "Maximum nodes of each zone's user pool."
  type        = number
  default     = 3
}

variable "system_node_vm_size" {
  description = "VM size of the system pool (cluster add-ons only)."
  type        = string
  default     = "Standard_D2ds_v5"
}

variable "postgres_sku_name" {
  description = "PostgreSQL Flexible Server SKU."
  type        = string
  default     = "GP_Standard_D2ds_v5"
}

variable "postgres_storage_mb" {
  description = "PostgreSQL storage in MB."
  type        = number
  default     = 32768
}

variable "postgres_zone" {
  description = "Zone of the PostgreSQL primary."
  type        = string
  default     = "1"
}

variable "postgres_standby_zone" {
  description = "Zone of a zone-redundant standby, or null for none."
  type        = string
  default     = "2"
}

variable "postgres_backup_retention_days" {
  description = "PostgreSQL backup retention in days."
  type        = number
  default     = 14
}

variable "postgres_password_version" {
  description = "Bump to rotate the database password (server and Key Vault in one apply; restart the pods afterwards)."
  type        = number
  default     = 1
}

variable "postgres_app_password_version" {
  description = "Bump to rotate the application's database password (Key Vault in the apply; the role on the next rollout's migrate)."
  type        = number
  default     = 1
}

variable "enable_keyvault_csi" {
  description = "Enable the Key Vault CSI driver and let the kubelet identity read the whole vault (keyvault-csi component)."
  type        = bool
  default     = false
}

variable "enable_managed_prometheus" {
  description = "AKS managed Prometheus with an Azure Monitor workspace (required by k8s/base/podmonitor.yaml's CRD)."
  type        = bool
  default     = true
}

variable "enable_workload_identity" {
  description = "Create paytrackr's own Workload Identity (federated with its ServiceAccount) and grant it the connection-string secret; use with the k8s/components/workload-identity component."
  type        = bool
  default     = false
}

variable "kubelet_reads_secret" {
  description = "Keep Key Vault Secrets User for the kubelet identity (the default path). Set false once the pods use Workload Identity."
  type        = bool
  default     = true
}

variable "key_vault_purge_protection" {
  description = "Purge protection on the vault (irreversible; recommended for prod)."
  type        = bool
  default     = true
}

variable "image_tag" {
  description = "paytrackr image tag deployed by the Kubernetes overlay (written into k8s_environment)."
  type        = string
  default     = "0.1.0"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
