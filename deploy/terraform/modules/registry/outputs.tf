output "id" {
  description = "ID of the registry (AcrPull scope)."
  value       = azurerm_container_registry.this.id
}

output "name" {
  description = "Name of the registry (az acr build --registry)."
  value       = azurerm_container_registry.this.name
}

output "login_server" {
  description = "Login server, the image name prefix: <name>.azurecr.io."
  value       = azurerm_container_registry.this.login_server
}
