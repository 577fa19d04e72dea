# Registry for the paytrackr image. No admin user: pushes use the operator's
# Entra ID login (az acr build / az acr login), pulls the kubelet identity
# (AcrPull, granted in the aks module).
resource "azurerm_container_registry" "this" {
  name                = var.name
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = var.sku
  admin_enabled       = false
  tags                = var.tags
}
