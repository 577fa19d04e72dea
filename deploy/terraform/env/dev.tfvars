# Development sizing: no API server SLA, burstable database without a
# standby, one small user node per zone plus the system pool. Use its own backend key (paytrackr-dev.tfstate).
environment = "dev"
location    = "westeurope"

aks_sku_tier            = "Free"
zones                   = ["1", "2", "3"]
node_vm_size            = "Standard_D2ds_v5"
node_min_count_per_zone = 1
node_max_count_per_zone = 2
system_node_vm_size     = "Standard_D2ds_v5"

postgres_sku_name              = "B_Standard_B1ms"
postgres_storage_mb            = 32768
postgres_zone                  = "1"
postgres_standby_zone          = null
postgres_backup_retention_days = 7

# Lets a dev environment be destroyed and recreated under the same name.
key_vault_purge_protection = false
