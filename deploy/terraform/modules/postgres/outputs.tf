output "server_id" {
  description = "ID of the Flexible Server."
  value       = azurerm_postgresql_flexible_server.this.id
}

output "fqdn" {
  description = "Private FQDN of the server (resolves inside the VNet only)."
  value       = azurerm_postgresql_flexible_server.this.fqdn
}

output "database_name" {
  description = "Name of the paytrackr database."
  value       = azurerm_postgresql_flexible_server_database.this.name
}

output "private_dns_zone_name" {
  description = "Private DNS zone the server's name resolves in."
  value       = azurerm_private_dns_zone.this.name
}

output "password_version" {
  description = "Version of the administrator password; consumers of connection_string use it as their write-only version."
  value       = var.password_version
}

output "app_password_version" {
  description = "Version of the application's password; the write-only version of its Key Vault secret."
  value       = var.app_password_version
}

output "connection_string" {
  description = "The application's libpq connection string: its own least-privileged login (app_login), TLS verified (sslmode=verify-full; the server supplies sslrootcert from PAYTRACKR_DB_SSLROOTCERT). Ephemeral: only write-only arguments can take it."
  value = join(" ", [
    "host=${azurerm_postgresql_flexible_server.this.fqdn}",
    "port=5432",
    "dbname=${azurerm_postgresql_flexible_server_database.this.name}",
    "user=${var.app_login}",
    "password=${ephemeral.random_password.app.result}",
    "sslmode=verify-full",
    "connect_timeout=10",
    "application_name=paytrackr",
  ])
  ephemeral = true
}

output "admin_connection_string" {
  description = "The administrator's libpq connection string, for `paytrackr-server migrate` only (PAYTRACKR_MIGRATE_KEYVAULT_SECRET). Ephemeral."
  value = join(" ", [
    "host=${azurerm_postgresql_flexible_server.this.fqdn}",
    "port=5432",
    "dbname=${azurerm_postgresql_flexible_server_database.this.name}",
    "user=${var.administrator_login}",
    "password=${ephemeral.random_password.admin.result}",
    "sslmode=verify-full",
    "connect_timeout=10",
    "application_name=paytrackr-migrate",
  ])
  ephemeral = true
}
