variable "name" {
  description = "Key Vault name (globally unique, 3-24 characters)."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the vault."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "tenant_id" {
  description = "Entra ID tenant of the vault."
  type        = string
}

variable "vnet_id" {
  description = "VNet linked to the privatelink.vaultcore.azure.net zone, so pods resolve the vault to its private endpoint."
  type        = string
}

variable "endpoints_subnet_id" {
  description = "Subnet for the vault's private endpoint."
  type        = string
}

variable "deployer_object_id" {
  description = "Object ID of the principal running Terraform; it gets Key Vault Secrets Officer to write the secret."
  type        = string
}

variable "allowed_ip_ranges" {
  description = "Public IPs/CIDRs allowed through the vault firewall besides the private endpoint: the machine or CI runner that runs Terraform (it writes the secret over the public endpoint)."
  type        = list(string)
  default     = []
}

variable "kubelet_object_id" {
  description = "Object (principal) ID of the AKS kubelet identity; it gets Key Vault Secrets User on the connection-string secret."
  type        = string
}

variable "secret_name" {
  description = "Name of the secret holding the connection string; PAYTRACKR_KEYVAULT_SECRET must match."
  type        = string
  default     = "postgres-connection-string"
}

variable "connection_string" {
  description = "libpq connection string to store (ephemeral: never written to state)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "connection_string_version" {
  description = "Write-only version of the application's secret; the secret is rewritten when it changes (follow the application password version)."
  type        = number
}

variable "admin_secret_name" {
  description = "Name of the secret holding the administrator's connection string; PAYTRACKR_MIGRATE_KEYVAULT_SECRET must match."
  type        = string
  default     = "postgres-admin-connection-string"
}

variable "admin_connection_string" {
  description = "The administrator's libpq connection string, for migrations (ephemeral: never written to state)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "admin_connection_string_version" {
  description = "Write-only version of the administrator's secret (follow the administrator password version)."
  type        = number
}

variable "kubelet_reads_whole_vault" {
  description = "Grant the kubelet identity Secrets User on the whole vault instead of the one secret (needed by the keyvault-csi Kustomize component, which also reads the token and TLS secrets)."
  type        = bool
  default     = false
}

variable "kubelet_reads_secret" {
  description = "Grant the kubelet identity Key Vault Secrets User (the default way the server authenticates). Turn off once every pod uses Workload Identity."
  type        = bool
  default     = true
}

variable "workload_identity_enabled" {
  description = "Grant paytrackr's Workload Identity (workload_object_id) Key Vault Secrets User on the connection-string secret. A plain bool, known at plan time, unlike the identity's id."
  type        = bool
  default     = false
}

variable "workload_object_id" {
  description = "Object (principal) ID of paytrackr's Workload Identity; used when workload_identity_enabled."
  type        = string
  default     = null
}

variable "purge_protection_enabled" {
  description = "Keep deleted secrets recoverable for the retention period even against a purge (recommended for production; cannot be turned off)."
  type        = bool
  default     = true
}

variable "soft_delete_retention_days" {
  description = "Days a deleted vault or secret stays recoverable (7-90)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
