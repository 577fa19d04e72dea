terraform {
  # 1.11: write-only arguments (administrator_password_wo), so the password
  # never lands in the state file.
  required_version = ">= 1.11"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.42, < 5.0"
    }
    random = {
      source = "hashicorp/random"
      # 3.7: the ephemeral random_password resource.
      version = ">= 3.7, < 4.0"
    }
  }
}
