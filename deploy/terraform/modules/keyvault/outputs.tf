output "key_vault_id" {
  description = "ID of the vault."
  value       = azurerm_key_vault.this.id
}

output "key_vault_name" {
  description = "Name of the vault."
  value       = azurerm_key_vault.this.name
}

output "key_vault_uri" {
  description = "Vault URI for PAYTRACKR_KEYVAULT_URL, without the trailing slash."
  value       = trimsuffix(azurerm_key_vault.this.vault_uri, "/")
}

output "secret_name" {
  description = "Name of the connection-string secret, for PAYTRACKR_KEYVAULT_SECRET."
  value       = azurerm_key_vault_secret.connection_string.name
}

output "secret_versionless_id" {
  description = "Versionless ID of the connection-string secret."
  value       = azurerm_key_vault_secret.connection_string.versionless_id
}

output "admin_secret_name" {
  description = "Name of the administrator's connection-string secret, for PAYTRACKR_MIGRATE_KEYVAULT_SECRET."
  value       = azurerm_key_vault_secret.admin_connection_string.name
}
