variable "name" {
  description = "Prefix of every resource name, e.g. paytrackr-prod."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group that holds the network."
  type        = string
}

variable "location" {
  description = "Azure region, e.g. westeurope."
  type        = string
}

variable "address_space" {
  description = "Address space of the VNet; must contain the three subnets and must not overlap the AKS pod and service CIDRs."
  type        = list(string)
  default     = ["10.40.0.0/16"]
}

variable "aks_subnet_cidr" {
  description = "Subnet of the AKS nodes. With Azure CNI Overlay pods do not use it, so it only has to fit the nodes."
  type        = string
  default     = "10.40.0.0/20"
}

variable "postgres_subnet_cidr" {
  description = "Subnet delegated to PostgreSQL Flexible Server (at least /28; /24 leaves room for replicas and HA)."
  type        = string
  default     = "10.40.16.0/24"
}

variable "endpoints_subnet_cidr" {
  description = "Subnet for private endpoints (Key Vault)."
  type        = string
  default     = "10.40.17.0/24"
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
