# Key Vault in RBAC mode holding the PostgreSQL connection string. The AKS
# kubelet identity may read that one secret; pods reach the vault through a
# private endpoint inside the VNet.

resource "azurerm_key_vault" "this" {
  name                = var.name
  resource_group_name = var.resource_group_name
  location            = var.location
  tenant_id           = var.tenant_id
  sku_name            = "standard"

  # Azure RBAC instead of access policies: grants are ordinary role
  # assignments, scoped down to a single secret.
  rbac_authorization_enabled = true

  purge_protection_enabled   = var.purge_protection_enabled
  soft_delete_retention_days = var.soft_delete_retention_days

  # The public endpoint stays on only for the Terraform runner's addresses;
  # everything else is denied. Pods use the private endpoint.
  public_network_access_enabled = true
  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
    ip_rules       = var.allowed_ip_ranges
  }

  tags = var.tags
}

resource "azurerm_role_assignment" "deployer_secrets_officer" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = var.deployer_object_id
}

# New role assignments take up to a minute to be honoured by Key Vault;
# writing the secret before that fails with 403.
resource "time_sleep" "rbac_propagation" {
  create_duration = "60s"
  depends_on      = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "connection_string" {
  name         = var.secret_name
  key_vault_id = azurerm_key_vault.this.id
  content_type = "libpq connection string (application login)"

  # Write-only: the value goes to Key Vault but not into the state file.
  value_wo         = var.connection_string
  value_wo_version = var.connection_string_version

  depends_on = [time_sleep.rbac_propagation]
}

# The administrator's connection string, read only by the migrate init
# container (PAYTRACKR_MIGRATE_KEYVAULT_SECRET), which creates the
# application's login from the secret above.
resource "azurerm_key_vault_secret" "admin_connection_string" {
  name         = var.admin_secret_name
  key_vault_id = azurerm_key_vault.this.id
  content_type = "libpq connection string (administrator, migrations only)"

  value_wo         = var.admin_connection_string
  value_wo_version = var.admin_connection_string_version

  depends_on = [time_sleep.rbac_propagation]
}

# The init container runs with the pod's identity, so that identity reads
# the administrator's secret too; run migrations from a Job with an
# identity of its own to separate them fully (deploy/README.md).
resource "azurerm_role_assignment" "kubelet_admin_secret" {
  count                = var.kubelet_reads_secret && !var.kubelet_reads_whole_vault ? 1 : 0
  scope                = azurerm_key_vault_secret.admin_connection_string.resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = var.kubelet_object_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "workload_admin_secret" {
  count                = var.workload_identity_enabled ? 1 : 0
  scope                = azurerm_key_vault_secret.admin_connection_string.resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = var.workload_object_id
  principal_type       = "ServicePrincipal"
}

# The server (any pod on the node, in fact: that is the nature of the kubelet
# identity) reads this one secret and nothing else.
resource "azurerm_role_assignment" "kubelet_secrets_user" {
  count                = var.kubelet_reads_secret ? 1 : 0
  scope                = var.kubelet_reads_whole_vault ? azurerm_key_vault.this.id : azurerm_key_vault_secret.connection_string.resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = var.kubelet_object_id
  principal_type       = "ServicePrincipal"
}

# Workload Identity (optional): paytrackr's own identity reads the one
# connection-string secret; only pods of its ServiceAccount can use it.
resource "azurerm_role_assignment" "workload_secrets_user" {
  count                = var.workload_identity_enabled ? 1 : 0
  scope                = azurerm_key_vault_secret.connection_string.resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = var.workload_object_id
  principal_type       = "ServicePrincipal"
}

# Private endpoint + private DNS: <vault>.vault.azure.net resolves to an
# address in the endpoints subnet from inside the VNet.
resource "azurerm_private_dns_zone" "vault" {
  name                = "privatelink.vaultcore.azure.net"
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "vault" {
  name                  = "${var.name}-vnet-link"
  resource_group_name   = var.resource_group_name
  private_dns_zone_name = azurerm_private_dns_zone.vault.name
  virtual_network_id    = var.vnet_id
  registration_enabled  = false
  tags                  = var.tags
}

resource "azurerm_private_endpoint" "vault" {
  name                = "${var.name}-pe"
  resource_group_name = var.resource_group_name
  location            = var.location
  subnet_id           = var.endpoints_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "${var.name}-vault"
    private_connection_resource_id = azurerm_key_vault.this.id
    subresource_names              = ["vault"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "vault"
    private_dns_zone_ids = [azurerm_private_dns_zone.vault.id]
  }

  depends_on = [azurerm_private_dns_zone_virtual_network_link.vault]
}
