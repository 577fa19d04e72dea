# One paytrackr environment: resource group, network, PostgreSQL, Key Vault,
# registry and AKS, wired together. dev.tfvars and prod.tfvars size it.

data "azurerm_client_config" "current" {}

locals {
  name = "paytrackr-${var.environment}"
  # Globally unique names: Key Vault max 24 chars, registry alphanumeric.
  unique = "${var.environment}${var.unique_suffix}"
  tags = merge({
    application = "paytrackr"
    environment = var.environment
    managed-by  = "terraform"
  }, var.tags)
  # The overlays' namespaces (k8s/overlays/*/namespace.yaml).
  k8s_namespace    = var.environment == "prod" ? "paytrackr" : "paytrackr-${var.environment}"
  admin_object_ids = length(var.admin_object_ids) > 0 ? var.admin_object_ids : [data.azurerm_client_config.current.object_id]
}

resource "azurerm_resource_group" "this" {
  name     = "${local.name}-rg"
  location = var.location
  tags     = local.tags
}

module "network" {
  source = "../modules/network"

  name                  = local.name
  resource_group_name   = azurerm_resource_group.this.name
  location              = azurerm_resource_group.this.location
  address_space         = var.address_space
  aks_subnet_cidr       = var.aks_subnet_cidr
  postgres_subnet_cidr  = var.postgres_subnet_cidr
  endpoints_subnet_cidr = var.endpoints_subnet_cidr
  tags                  = local.tags
}

module "registry" {
  source = "../modules/registry"

  name                = "paytrackr${local.unique}"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  tags                = local.tags
}

module "aks" {
  source = "../modules/aks"

  name                            = "${local.name}-aks"
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  tenant_id                       = data.azurerm_client_config.current.tenant_id
  kubernetes_version              = var.kubernetes_version
  sku_tier                        = var.aks_sku_tier
  aks_subnet_id                   = module.network.aks_subnet_id
  zones                           = var.zones
  node_vm_size                    = var.node_vm_size
  node_min_count_per_zone         = var.node_min_count_per_zone
  node_max_count_per_zone         = var.node_max_count_per_zone
  system_node_vm_size             = var.system_node_vm_size
  enable_workload_identity        = var.enable_workload_identity
  enable_managed_prometheus       = var.enable_managed_prometheus
  workload_namespace              = local.k8s_namespace
  admin_object_ids                = local.admin_object_ids
  api_server_authorized_ip_ranges = var.allowed_ip_ranges
  acr_id                          = module.registry.id
  enable_keyvault_csi             = var.enable_keyvault_csi
  public_ip_dns_label             = "paytrackr-${local.unique}"
  tags                            = local.tags
}

module "postgres" {
  source = "../modules/postgres"

  name                   = "paytrackr-${local.unique}"
  resource_group_name    = azurerm_resource_group.this.name
  location               = azurerm_resource_group.this.location
  vnet_id                = module.network.vnet_id
  delegated_subnet_id    = module.network.postgres_subnet_id
  sku_name               = var.postgres_sku_name
  storage_mb             = var.postgres_storage_mb
  zone                   = var.postgres_zone
  high_availability_zone = var.postgres_standby_zone
  backup_retention_days  = var.postgres_backup_retention_days
  password_version       = var.postgres_password_version
  app_password_version   = var.postgres_app_password_version
  tags                   = local.tags
}

module "keyvault" {
  source = "../modules/keyvault"

  name                            = "paytrackr-${local.unique}"
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  tenant_id                       = data.azurerm_client_config.current.tenant_id
  vnet_id                         = module.network.vnet_id
  endpoints_subnet_id             = module.network.endpoints_subnet_id
  deployer_object_id              = data.azurerm_client_config.current.object_id
  allowed_ip_ranges               = var.allowed_ip_ranges
  kubelet_object_id               = module.aks.kubelet_object_id
  kubelet_reads_whole_vault       = var.enable_keyvault_csi
  kubelet_reads_secret            = var.kubelet_reads_secret
  workload_identity_enabled       = var.enable_workload_identity
  workload_object_id              = module.aks.workload_object_id
  connection_string               = module.postgres.connection_string
  connection_string_version       = module.postgres.app_password_version
  admin_connection_string         = module.postgres.admin_connection_string
  admin_connection_string_version = module.postgres.password_version
  purge_protection_enabled        = var.key_vault_purge_protection
  tags                            = local.tags
}
