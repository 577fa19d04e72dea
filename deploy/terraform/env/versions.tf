terraform {
  # 1.11: write-only arguments and ephemeral values keep the database
  # password out of state and plan files.
  required_version = ">= 1.11"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.42, < 5.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.7, < 4.0"
    }
    time = {
      source  = "hashicorp/time"
      version = ">= 0.12, < 1.0"
    }
  }

  # Remote state in an Azure Storage container, configured per environment
  # at init time (see backend.hcl.example):
  #   terraform init -backend-config=backend.hcl
  # State holds no secrets (write-only arguments), but it does hold resource
  # ids: keep the container private and use Entra ID auth (use_azuread_auth).
  backend "azurerm" {}
}

provider "azurerm" {
  features {
    key_vault {
      # A destroyed environment's vault stays soft-deleted (and its name
      # taken) rather than being purged by Terraform.
      purge_soft_delete_on_destroy = false
    }
  }
  subscription_id = var.subscription_id
  # Entra ID for storage data-plane calls; no storage account keys.
  storage_use_azuread = true
}
