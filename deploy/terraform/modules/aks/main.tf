# AKS with managed identities only (no service principal secrets), nodes in
# the network module's subnet, Azure CNI Overlay with the Cilium data plane
# (which enforces the NetworkPolicy), Entra ID authentication with Azure
# RBAC and local accounts off.

# User-assigned control-plane identity, so its rights on the subnet and the
# public IP exist before the cluster is created.
resource "azurerm_user_assigned_identity" "control_plane" {
  name                = "${var.name}-control-plane"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

# Joining nodes to a subnet we own, and attaching the load balancer to the
# static public IP below, both need Network Contributor.
resource "azurerm_role_assignment" "control_plane_subnet" {
  scope                = var.aks_subnet_id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
}

# The cloud provider reads the static public IP named by the Service
# (annotations azure-pip-name, azure-load-balancer-resource-group) and joins
# it to the load balancer in the node resource group, which AKS manages
# itself. So the grant is on that one IP: Network Contributor on the whole
# resource group would also let the cluster rewrite the NSGs, the VNet and
# the private DNS zones of PostgreSQL and Key Vault.
resource "azurerm_role_assignment" "control_plane_public_ip" {
  scope                = azurerm_public_ip.service.id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
}

# Static public IP for the paytrackr LoadBalancer Service (annotation
# azure-pip-name), so the address and DNS name survive re-creating the
# Service or the cluster. Zone-redundant like the nodes.
resource "azurerm_public_ip" "service" {
  name                = "${var.name}-paytrackr-pip"
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = "Standard"
  allocation_method   = "Static"
  zones               = var.zones
  domain_name_label   = var.public_ip_dns_label
  tags                = var.tags
}

resource "azurerm_kubernetes_cluster" "this" {
  name                = var.name
  resource_group_name = var.resource_group_name
  location            = var.location
  dns_prefix          = var.name
  kubernetes_version  = var.kubernetes_version
  sku_tier            = var.sku_tier
  node_resource_group = "${var.resource_group_name}-${var.name}-nodes"

  automatic_upgrade_channel = "patch"
  node_os_upgrade_channel   = "NodeImage"

  # Automatic upgrades only inside these windows (UTC), never at peak: each
  # node drain moves WebSocket clients. Cluster (patch) upgrades weekly,
  # node images weekly a day later, so one window's problems show before
  # the next change.
  maintenance_window_auto_upgrade {
    frequency   = "Weekly"
    interval    = 1
    day_of_week = var.maintenance_day
    start_time  = var.maintenance_start_time
    duration    = 4
    utc_offset  = "+00:00"
  }

  maintenance_window_node_os {
    frequency   = "Weekly"
    interval    = 1
    day_of_week = var.maintenance_node_os_day
    start_time  = var.maintenance_start_time
    duration    = 4
    utc_offset  = "+00:00"
  }

  # One user pool per zone (below): the autoscaler keeps them the same size,
  # so a zone-spread Deployment always finds room in every zone.
  auto_scaler_profile {
    balance_similar_node_groups = true
    expander                    = "least-waste"
  }

  # Workload Identity (optional): the cluster publishes an OIDC issuer and
  # runs the webhook that projects a ServiceAccount token into labelled
  # pods. The issuer cannot be turned off again once on.
  oidc_issuer_enabled       = var.enable_workload_identity
  workload_identity_enabled = var.enable_workload_identity

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.control_plane.id]
  }
  # The kubelet identity is left to AKS to create; its client id is the
  # AZURE_CLIENT_ID of the server (see outputs).

  local_account_disabled = true
  azure_active_directory_role_based_access_control {
    tenant_id          = var.tenant_id
    azure_rbac_enabled = true
  }

  dynamic "api_server_access_profile" {
    for_each = length(var.api_server_authorized_ip_ranges) > 0 ? [1] : []
    content {
      authorized_ip_ranges = var.api_server_authorized_ip_ranges
    }
  }

  # System pool: CoreDNS, metrics-server, the CSI and monitoring agents.
  # only_critical_addons_enabled taints it, so paytrackr never lands here
  # and a busy application cannot starve the cluster's own pods.
  default_node_pool {
    name                         = "system"
    vm_size                      = var.system_node_vm_size
    vnet_subnet_id               = var.aks_subnet_id
    zones                        = var.zones
    only_critical_addons_enabled = true
    auto_scaling_enabled         = true
    min_count                    = length(var.zones)
    max_count                    = 2 * length(var.zones)
    os_sku                       = "AzureLinux"
    max_pods                     = 110
    # Rebuilding the pool (e.g. a VM size change) goes through this name.
    temporary_name_for_rotation = "systemtmp"

    kubelet_config {
      container_log_max_size_mb = 50
      container_log_max_line    = 5
    }

    upgrade_settings {
      max_surge                     = "33%"
      drain_timeout_in_minutes      = 10
      node_soak_duration_in_minutes = 0
    }
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
    pod_cidr            = var.pod_cidr
    service_cidr        = var.service_cidr
    dns_service_ip      = var.dns_service_ip
    load_balancer_sku   = "standard"
    outbound_type       = "loadBalancer"
  }

  # AKS managed Prometheus (the ama-metrics add-on): it installs the
  # PodMonitor CRD (azmonitoring.coreos.com) that k8s/base/podmonitor.yaml
  # uses, and scrapes paytrackr's /metrics into the workspace below.
  dynamic "monitor_metrics" {
    for_each = var.enable_managed_prometheus ? [1] : []
    content {}
  }

  dynamic "key_vault_secrets_provider" {
    for_each = var.enable_keyvault_csi ? [1] : []
    content {
      secret_rotation_enabled  = true
      secret_rotation_interval = "2m"
    }
  }

  tags = var.tags

  depends_on = [
    azurerm_role_assignment.control_plane_subnet,
    azurerm_role_assignment.control_plane_public_ip,
  ]

  lifecycle {
    # The autoscaler owns the node count; patch upgrades move the version.
    ignore_changes = [default_node_pool[0].node_count, kubernetes_version]
  }
}

# User pools, one per zone. A single pool spanning three zones cannot be
# grown in a chosen zone: the autoscaler adds a node wherever Azure puts it,
# and pods held back by the Deployment's DoNotSchedule zone spread stay
# Pending. With a pool per zone (balanced above) it scales the right zone.
resource "azurerm_kubernetes_cluster_node_pool" "user" {
  for_each = toset(var.zones)

  name                  = "user${each.key}"
  kubernetes_cluster_id = azurerm_kubernetes_cluster.this.id
  mode                  = "User"
  vm_size               = var.node_vm_size
  vnet_subnet_id        = var.aks_subnet_id
  zones                 = [each.key]
  auto_scaling_enabled  = true
  min_count             = var.node_min_count_per_zone
  max_count             = var.node_max_count_per_zone
  os_sku                = "AzureLinux"
  max_pods              = 110
  node_labels           = { "paytrackr.io/pool" = "user" }
  tags                  = var.tags

  # The kubelet rotates container logs at 50 MiB x 5 files: the pods'
  # ephemeral-storage limits (k8s/base/deployment.yaml) hold that much.
  kubelet_config {
    container_log_max_size_mb = 50
    container_log_max_line    = 5
  }

  upgrade_settings {
    max_surge = "33%"
    # Give pods' preStop + WebSocket drain time before a node goes.
    drain_timeout_in_minutes      = 10
    node_soak_duration_in_minutes = 0
  }

  lifecycle {
    ignore_changes = [node_count]
  }
}

# Workload Identity (enable_workload_identity): an identity of paytrackr's
# own, usable only by pods of its ServiceAccount, instead of the kubelet
# identity that every pod on a node can use. The keyvault module grants it
# Key Vault Secrets User.
resource "azurerm_user_assigned_identity" "workload" {
  count               = var.enable_workload_identity ? 1 : 0
  name                = "${var.name}-paytrackr-workload"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_federated_identity_credential" "workload" {
  count               = var.enable_workload_identity ? 1 : 0
  name                = "paytrackr-serviceaccount"
  resource_group_name = var.resource_group_name
  parent_id           = azurerm_user_assigned_identity.workload[0].id
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  audience            = ["api://AzureADTokenExchange"]
  subject             = "system:serviceaccount:${var.workload_namespace}:${var.workload_service_account}"
}

resource "azurerm_role_assignment" "admins" {
  for_each             = toset(var.admin_object_ids)
  scope                = azurerm_kubernetes_cluster.this.id
  role_definition_name = "Azure Kubernetes Service RBAC Cluster Admin"
  principal_id         = each.value
}

resource "azurerm_role_assignment" "kubelet_acr_pull" {
  count                = var.acr_id == null ? 0 : 1
  scope                = var.acr_id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_kubernetes_cluster.this.kubelet_identity[0].object_id
  principal_type       = "ServicePrincipal"
}

# Where managed Prometheus sends the metrics: an Azure Monitor workspace,
# reached through a data collection endpoint and rule associated with the
# cluster (the add-on alone installs the agent but stores nothing).
resource "azurerm_monitor_workspace" "this" {
  count               = var.enable_managed_prometheus ? 1 : 0
  name                = "${var.name}-amw"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_monitor_data_collection_endpoint" "prometheus" {
  count               = var.enable_managed_prometheus ? 1 : 0
  name                = "${var.name}-prom-dce"
  resource_group_name = var.resource_group_name
  location            = var.location
  kind                = "Linux"
  tags                = var.tags
}

resource "azurerm_monitor_data_collection_rule" "prometheus" {
  count                       = var.enable_managed_prometheus ? 1 : 0
  name                        = "${var.name}-prom-dcr"
  resource_group_name         = var.resource_group_name
  location                    = var.location
  kind                        = "Linux"
  data_collection_endpoint_id = azurerm_monitor_data_collection_endpoint.prometheus[0].id
  tags                        = var.tags

  destinations {
    monitor_account {
      monitor_account_id = azurerm_monitor_workspace.this[0].id
      name               = "workspace"
    }
  }

  data_flow {
    streams      = ["Microsoft-PrometheusMetrics"]
    destinations = ["workspace"]
  }

  data_sources {
    prometheus_forwarder {
      streams = ["Microsoft-PrometheusMetrics"]
      name    = "PrometheusDataSource"
    }
  }
}

resource "azurerm_monitor_data_collection_rule_association" "prometheus" {
  count                   = var.enable_managed_prometheus ? 1 : 0
  name                    = "${var.name}-prom-dcra"
  target_resource_id      = azurerm_kubernetes_cluster.this.id
  data_collection_rule_id = azurerm_monitor_data_collection_rule.prometheus[0].id
}
