# Production sizing. Pass with: terraform plan -var-file=prod.tfvars
# subscription_id, unique_suffix and allowed_ip_ranges are yours to set
# (here, in a git-ignored *.auto.tfvars, or as TF_VAR_* variables).
environment = "prod"
location    = "westeurope"

aks_sku_tier            = "Standard"
zones                   = ["1", "2", "3"]
node_vm_size            = "Standard_D4ds_v5"
node_min_count_per_zone = 1
node_max_count_per_zone = 3
system_node_vm_size     = "Standard_D2ds_v5"

postgres_sku_name              = "GP_Standard_D2ds_v5"
postgres_storage_mb            = 65536
postgres_zone                  = "1"
postgres_standby_zone          = "2"
postgres_backup_retention_days = 35

key_vault_purge_protection = true
