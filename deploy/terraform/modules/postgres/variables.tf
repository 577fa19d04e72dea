variable "name" {
  description = "Server name (globally unique in Azure; it becomes part of the server's FQDN)."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the server and its private DNS zone."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "vnet_id" {
  description = "VNet the private DNS zone is linked to (the AKS VNet)."
  type        = string
}

variable "delegated_subnet_id" {
  description = "Subnet delegated to Microsoft.DBforPostgreSQL/flexibleServers."
  type        = string
}

variable "postgres_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "sku_name" {
  description = "Compute SKU. Burstable (B_*) suits dev; General Purpose (GP_*) for production. max_connections follows the SKU: keep replicas x (PAYTRACKR_DB_POOL_SIZE + PAYTRACKR_DB_READ_CONNECTIONS + 2) under it."
  type        = string
  default     = "GP_Standard_D2ds_v5"
}

variable "storage_mb" {
  description = "Storage size in MB (auto-grow is on)."
  type        = number
  default     = 32768
}

variable "zone" {
  description = "Availability zone of the primary, or null to let Azure choose."
  type        = string
  default     = "1"
}

variable "high_availability_zone" {
  description = "Zone of a zone-redundant standby, or null for no standby (dev)."
  type        = string
  default     = null
}

variable "backup_retention_days" {
  description = "Point-in-time restore window, 7 to 35 days."
  type        = number
  default     = 14
}

variable "geo_redundant_backup_enabled" {
  description = "Copy backups to the paired region (cannot be changed after creation)."
  type        = bool
  default     = false
}

variable "database_name" {
  description = "Database created for paytrackr."
  type        = string
  default     = "paytrackr"
}

variable "administrator_login" {
  description = "Administrator user name."
  type        = string
  default     = "paytrackr_admin"
}

variable "password_version" {
  description = "Bump to rotate the administrator password: a new one is generated, set on the server and written to Key Vault in the same apply."
  type        = number
  default     = 1
}

variable "app_login" {
  description = "Login role of the application (least privilege: member of paytrackr_app, rows only). Created by `paytrackr-server migrate`, not by Terraform."
  type        = string
  default     = "paytrackr"
}

variable "app_password_version" {
  description = "Bump to rotate the application's password: a new one goes to Key Vault, and the next `migrate` (the next rollout) sets it on the role."
  type        = number
  default     = 1
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
