variable "name" {
  description = "Registry name (globally unique, alphanumeric, 5-50 characters)."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the registry."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "sku" {
  description = "Basic, Standard or Premium (Premium adds private endpoints and geo-replication)."
  type        = string
  default     = "Standard"
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
