# PostgreSQL Flexible Server with private access only: it lives in the
# delegated subnet, has no public endpoint, and its name resolves through a
# private DNS zone linked to the VNet.

# Ephemeral: generated during the apply, handed to write-only arguments, never
# stored in state or plan. It is applied only when password_version changes.
ephemeral "random_password" "admin" {
  length = 40
  # Only URI-unreserved symbols, so the password needs no quoting in a libpq
  # connection string or URI.
  special          = true
  override_special = "-_.~"
  min_upper        = 2
  min_lower        = 2
  min_numeric      = 2
}

# The application's own login (least privilege): generated the same way and
# stored only in Key Vault. Terraform cannot reach the private server to
# create the role; `paytrackr-server migrate` (the init container, running
# as the administrator) creates it from that connection string as a member
# of paytrackr_app, which may read and write rows and nothing else.
ephemeral "random_password" "app" {
  length           = 40
  special          = true
  override_special = "-_.~"
  min_upper        = 2
  min_lower        = 2
  min_numeric      = 2
}

# Must end in .postgres.database.azure.com for VNet-integrated servers.
resource "azurerm_private_dns_zone" "this" {
  name                = "${var.name}.private.postgres.database.azure.com"
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "this" {
  name                  = "${var.name}-vnet-link"
  resource_group_name   = var.resource_group_name
  private_dns_zone_name = azurerm_private_dns_zone.this.name
  virtual_network_id    = var.vnet_id
  registration_enabled  = false
  tags                  = var.tags
}

resource "azurerm_postgresql_flexible_server" "this" {
  name                = var.name
  resource_group_name = var.resource_group_name
  location            = var.location
  version             = var.postgres_version
  sku_name            = var.sku_name
  storage_mb          = var.storage_mb
  auto_grow_enabled   = true
  zone                = var.zone

  delegated_subnet_id           = var.delegated_subnet_id
  private_dns_zone_id           = azurerm_private_dns_zone.this.id
  public_network_access_enabled = false

  administrator_login               = var.administrator_login
  administrator_password_wo         = ephemeral.random_password.admin.result
  administrator_password_wo_version = var.password_version

  backup_retention_days        = var.backup_retention_days
  geo_redundant_backup_enabled = var.geo_redundant_backup_enabled

  dynamic "high_availability" {
    for_each = var.high_availability_zone == null ? [] : [var.high_availability_zone]
    content {
      mode                      = "ZoneRedundant"
      standby_availability_zone = high_availability.value
    }
  }

  tags = var.tags

  # Azure validates the zone's VNet link when the server is created; without
  # this the server can race the link and fail to provision.
  depends_on = [azurerm_private_dns_zone_virtual_network_link.this]

  lifecycle {
    # Azure may move the primary to the standby's zone on failover.
    ignore_changes = [zone, high_availability[0].standby_availability_zone]
  }
}

# TLS required for every connection (the server default, made explicit so a
# portal change shows up as drift), and nothing older than TLS 1.2.
resource "azurerm_postgresql_flexible_server_configuration" "require_tls" {
  name      = "require_secure_transport"
  server_id = azurerm_postgresql_flexible_server.this.id
  value     = "on"
}

resource "azurerm_postgresql_flexible_server_configuration" "tls_min" {
  name      = "ssl_min_protocol_version"
  server_id = azurerm_postgresql_flexible_server.this.id
  value     = "TLSv1.2"
}

resource "azurerm_postgresql_flexible_server_database" "this" {
  name      = var.database_name
  server_id = azurerm_postgresql_flexible_server.this.id
  charset   = "UTF8"
  collation = "en_US.utf8"

  lifecycle {
    prevent_destroy = true
  }
}
