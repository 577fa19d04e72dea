#!/usr/bin/env node
// Offline structural checks of deploy/terraform: parses every .tf file with
// @cdktf/hcl2json (Terraform's own HCL parser compiled to WebAssembly),
// checks every azurerm argument name against the azurerm 4.x schema shipped
// in @cdktf/provider-azurerm, and checks the topology the design asks for.
// Prints "ok - ..." / "not ok - ..." lines; tap.sh numbers them.
'use strict';
const fs = require('fs');
const path = require('path');

const root = process.argv[2];
const nodeDir = process.argv[3];
const k8sDir = process.argv[4];
const {parse} = require(path.join(nodeDir, 'node_modules/@cdktf/hcl2json'));
const schemaLib = path.join(nodeDir, 'node_modules/@cdktf/provider-azurerm/lib');

const out = [];
function check(cond, what, detail) {
  out.push((cond ? 'ok - ' : 'not ok - ') + what);
  if (!cond && detail) out.push('# ' + String(detail).replace(/\n/g, '\n# '));
}

function walkTf(dir) {
  const files = [];
  for (const e of fs.readdirSync(dir, {withFileTypes: true})) {
    if (e.name === '.terraform') continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files.push(...walkTf(p));
    else if (e.name.endsWith('.tf') || e.name.endsWith('.tfvars') || e.name.endsWith('.hcl.example')) files.push(p);
  }
  return files.sort();
}

// Merge the JSON of all .tf files of one directory (one Terraform module).
function mergeInto(acc, j) {
  for (const [k, v] of Object.entries(j)) {
    if (Array.isArray(v)) acc[k] = (acc[k] || []).concat(v);
    else if (v && typeof v === 'object') acc[k] = mergeInto(acc[k] || {}, v);
    else acc[k] = v;
  }
  return acc;
}

const asArray = (x) => (Array.isArray(x) ? x : x === undefined ? [] : [x]);
const one = (x) => asArray(x)[0] || {};
const resources = (mod, type) => Object.entries(mod.resource?.[type] || {}).map(([n, b]) => [n, one(b)]);

// Argument names per azurerm resource type, from the schema package's
// generated docs links ("...docs/resources/<type>#<arg> ..."). Nested block
// arguments are included in the same set.
const schemaCache = new Map();
function schemaArgs(type) {
  if (schemaCache.has(type)) return schemaCache.get(type);
  const short = type.replace(/^azurerm_/, '');
  const file = path.join(schemaLib, short.replace(/_/g, '-'), 'index.d.ts');
  let args = null;
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, 'utf8');
    args = new Set();
    const re = new RegExp(`docs/resources/${short}#([a-z0-9_]+) `, 'g');
    let m;
    while ((m = re.exec(text))) args.add(m[1]);
  }
  schemaCache.set(type, args);
  return args;
}

const META = new Set(['count', 'for_each', 'depends_on', 'lifecycle', 'provider', 'provisioner', 'connection', 'dynamic', 'content']);
function unknownArgs(block, known, prefix = '') {
  const bad = [];
  for (const [k, v] of Object.entries(block)) {
    if (k === 'dynamic') {
      for (const [dn, db] of Object.entries(v)) {
        if (!known.has(dn)) bad.push(prefix + dn);
        for (const d of asArray(db)) for (const c of asArray(d.content)) bad.push(...unknownArgs(c, known, prefix + dn + '.'));
      }
      continue;
    }
    if (META.has(k)) continue;
    if (!known.has(k)) bad.push(prefix + k);
    if (Array.isArray(v) && v.length && typeof v[0] === 'object' && v[0] !== null && !Array.isArray(v[0])) {
      for (const nested of v) bad.push(...unknownArgs(nested, known, prefix + k + '.'));
    }
  }
  return bad;
}

(async () => {
  // 1. Parse every file; group .tf files by directory (module).
  const modules = {};
  const parseErrors = [];
  const files = walkTf(root);
  for (const f of files) {
    try {
      const j = await parse(f, fs.readFileSync(f, 'utf8'));
      if (f.endsWith('.tf')) modules[path.dirname(f)] = mergeInto(modules[path.dirname(f)] || {}, j);
    } catch (e) {
      parseErrors.push(`${path.relative(root, f)}: ${e}`);
    }
  }
  check(parseErrors.length === 0 && files.length > 0, `all ${files.length} Terraform/HCL files under deploy/terraform parse`, parseErrors.join('\n'));

  const modDirs = ['network', 'postgres', 'keyvault', 'aks', 'registry'].map((m) => path.join(root, 'modules', m));
  const envDir = path.join(root, 'env');
  const mod = (name) => modules[path.join(root, 'modules', name)] || {};
  const env = modules[envDir] || {};

  // 2. Module layout and documentation of inputs/outputs.
  for (const d of [...modDirs, envDir]) {
    const rel = path.relative(root, d);
    const missing = ['main.tf', 'variables.tf', 'outputs.tf', 'versions.tf'].filter((f) => !fs.existsSync(path.join(d, f)));
    const m = modules[d] || {};
    const undocumented = [];
    for (const [n, v] of Object.entries(m.variable || {})) {
      const b = one(v);
      if (!b.description || !b.type) undocumented.push(`variable ${n}`);
    }
    for (const [n, v] of Object.entries(m.output || {})) if (!one(v).description) undocumented.push(`output ${n}`);
    check(missing.length === 0 && undocumented.length === 0, `${rel}: main/variables/outputs/versions present, every variable typed and described, every output described`,
      [...missing.map((f) => 'missing ' + f), ...undocumented.map((u) => u + ' lacks type/description')].join('\n'));
    const req = one(one(m.terraform).required_providers);
    const az = req.azurerm ? one(req.azurerm) : null;
    check(az && az.version === '>= 4.42, < 5.0' && /1\.1[1-9]|1\.[2-9]\d/.test(one(m.terraform).required_version || ''),
      `${rel}: pins azurerm ">= 4.42, < 5.0" and Terraform >= 1.11`, JSON.stringify(az));
  }

  // 3. Every azurerm argument exists in the azurerm 4.x schema; no deprecated spellings.
  const deprecated = new Set(['enable_rbac_authorization', 'enable_auto_scaling', 'enable_node_public_ip', 'enable_host_encryption', 'administrator_password']);
  const bad = [];
  let checked = 0;
  for (const [dir, m] of Object.entries(modules)) {
    for (const [type, insts] of Object.entries(m.resource || {})) {
      if (!type.startsWith('azurerm_')) continue;
      const known = schemaArgs(type);
      if (!known) { bad.push(`${type}: unknown resource type`); continue; }
      for (const [n, b] of Object.entries(insts)) {
        checked++;
        for (const a of unknownArgs(one(b), known)) bad.push(`${path.relative(root, dir)}: ${type}.${n}: unknown argument ${a}`);
        for (const a of Object.keys(one(b))) if (deprecated.has(a)) bad.push(`${type}.${n}: deprecated or state-leaking argument ${a}`);
      }
    }
  }
  check(bad.length === 0 && checked > 0, `all ${checked} azurerm resources use only arguments of the azurerm 4.x schema`, bad.join('\n'));

  // 4. Wiring: env passes every required input, only known inputs, and uses known outputs.
  const wiring = [];
  const used = new Set();
  for (const [name, b] of Object.entries(env.module || {})) {
    const blk = one(b);
    const src = path.resolve(envDir, blk.source || '');
    const m = modules[src];
    if (!m) { wiring.push(`module ${name}: source ${blk.source} not found`); continue; }
    used.add(path.basename(src));
    const vars = m.variable || {};
    for (const k of Object.keys(blk)) if (k !== 'source' && !META.has(k) && !vars[k]) wiring.push(`module ${name}: no variable ${k}`);
    for (const [v, vb] of Object.entries(vars)) if (!('default' in one(vb)) && !(v in blk)) wiring.push(`module ${name}: required variable ${v} not set`);
  }
  const envText = files.filter((f) => path.dirname(f) === envDir && f.endsWith('.tf')).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
  for (const [, name, o] of envText.matchAll(/module\.([a-z_]+)\.([a-z_]+)/g)) {
    const src = path.resolve(envDir, one((env.module || {})[name]).source || '');
    if (!((modules[src] || {}).output || {})[o]) wiring.push(`module.${name}.${o} is not an output of ${path.relative(root, src)}`);
  }
  check(wiring.length === 0 && ['network', 'postgres', 'keyvault', 'aks'].every((m) => used.has(m)),
    'env wires network, postgres, keyvault and aks with every required input and only existing inputs/outputs', wiring.join('\n'));
  const backend = one(one(env.terraform).backend);
  check(backend.azurerm !== undefined && fs.existsSync(path.join(envDir, 'backend.hcl.example')),
    'env declares an azurerm remote-state backend and ships backend.hcl.example');

  // 5. Network: PostgreSQL delegated subnet.
  const subnets = resources(mod('network'), 'azurerm_subnet');
  const delegated = subnets.filter(([, b]) => asArray(b.delegation).some((d) => asArray(d.service_delegation).some((s) => s.name === 'Microsoft.DBforPostgreSQL/flexibleServers')));
  check(subnets.length >= 3 && delegated.length === 1, 'network: VNet with AKS, private-endpoint and a PostgreSQL subnet delegated to Microsoft.DBforPostgreSQL/flexibleServers');

  // 5b. Zone-redundant HA replicates between primary and standby inside the
  // delegated subnet on 5432 (PostgreSQL) and 6432 (PgBouncer): the NSG must
  // allow that intra-subnet traffic before its deny rule.
  {
    const nsgs = resources(mod('network'), 'azurerm_network_security_group');
    const [, pgNsg] = nsgs.find(([n]) => n === 'postgres') || [null, {}];
    const rules = asArray(pgNsg.security_rule);
    const denyPrio = Math.min(...rules.filter((r) => r.access === 'Deny' && r.direction === 'Inbound').map((r) => r.priority), 4096);
    const ports = (r) => [...asArray(r.destination_port_range), ...asArray(r.destination_port_ranges)].map(String);
    const intra = (dir) => rules.some((r) => r.direction === dir && r.access === 'Allow' && r.priority < denyPrio &&
      r.source_address_prefix === '${var.postgres_subnet_cidr}' && r.destination_address_prefix === '${var.postgres_subnet_cidr}' &&
      ['5432', '6432'].every((p) => ports(r).includes(p)));
    check(intra('Inbound') && intra('Outbound'), 'network: the PostgreSQL NSG allows intra-subnet 5432 and 6432 (zone-redundant HA) in and out, before its deny rule',
      JSON.stringify(rules.map((r) => `${r.direction} ${r.access} ${r.priority} ${r.source_address_prefix}->${r.destination_address_prefix}:${ports(r)}`)));
  }

  // 6. Postgres: private only, zone linked before the server, TLS required, database, generated password.
  const pg = mod('postgres');
  const [, srv] = resources(pg, 'azurerm_postgresql_flexible_server')[0] || [null, {}];
  const zones = resources(pg, 'azurerm_private_dns_zone');
  const links = resources(pg, 'azurerm_private_dns_zone_virtual_network_link');
  const dependsOn = asArray(srv.depends_on).join(' ');
  check(srv.public_network_access_enabled === false && Boolean(srv.delegated_subnet_id) && Boolean(srv.private_dns_zone_id),
    'postgres: Flexible Server in the delegated subnet with public access off and a private DNS zone');
  check(zones.length === 1 && /\.postgres\.database\.azure\.com"?$/.test(zones[0][1].name) && links.length === 1 && links.some(([n]) => dependsOn.includes(`azurerm_private_dns_zone_virtual_network_link.${n}`)),
    'postgres: private DNS zone ends in .postgres.database.azure.com and the server depends on its VNet link', `zone=${zones[0] && zones[0][1].name} depends_on=${dependsOn}`);
  const cfgs = resources(pg, 'azurerm_postgresql_flexible_server_configuration').map(([, b]) => `${b.name}=${b.value}`);
  check(cfgs.includes('require_secure_transport=on'), 'postgres: require_secure_transport=on (TLS required)', cfgs.join(', '));
  check(resources(pg, 'azurerm_postgresql_flexible_server_database').length === 1, 'postgres: creates the paytrackr database');
  const eph = Object.keys(pg.ephemeral?.random_password || {});
  check(eph.includes('admin') && eph.includes('app') && /ephemeral\.random_password\./.test(srv.administrator_password_wo || '') && srv.administrator_password === undefined,
    'postgres: admin and application passwords generated (ephemeral random_password), the admin one set write-only, never in state');

  // 7. Key Vault: RBAC, secret written by Terraform after RBAC propagation, Secrets User for the kubelet identity.
  const kv = mod('keyvault');
  const [, vault] = resources(kv, 'azurerm_key_vault')[0] || [null, {}];
  check(vault.rbac_authorization_enabled === true, 'keyvault: RBAC authorization mode (rbac_authorization_enabled = true)');
  const secrets = resources(kv, 'azurerm_key_vault_secret');
  check(secrets.length === 2 && secrets.every(([, b]) => b.value_wo && asArray(b.depends_on).some((d) => /time_sleep\./.test(d))),
    'keyvault: application and administrator connection strings written write-only by Terraform, after waiting for RBAC propagation');
  // Least privilege: the server's secret is the application's own login;
  // the administrator's is a separate secret for migrate only.
  {
    const outs = pg.output || {};
    const app = String(one(outs.connection_string).value || '');
    const adm = String(one(outs.admin_connection_string).value || '');
    const envKv = one((env.module || {}).keyvault);
    check(/user=\$\{var\.app_login\}/.test(app) && !/administrator_login/.test(app) && /administrator_login/.test(adm) &&
      /module\.postgres\.connection_string/.test(envKv.connection_string || '') && /module\.postgres\.admin_connection_string/.test(envKv.admin_connection_string || ''),
      'postgres/keyvault: the server\'s connection string logs in as the application\'s own role, the administrator\'s goes to a separate secret for migrate',
      JSON.stringify({app, adm, envKv: {cs: envKv.connection_string, admin: envKv.admin_connection_string}}));
  }
  const grants = resources(kv, 'azurerm_role_assignment').map(([, b]) => b);
  check(grants.some((g) => g.role_definition_name === 'Key Vault Secrets User' && g.principal_id === '${var.kubelet_object_id}'),
    'keyvault: "Key Vault Secrets User" granted to the kubelet identity');
  check(resources(kv, 'azurerm_private_endpoint').length === 1 && (resources(kv, 'azurerm_private_dns_zone')[0] || [0, {}])[1].name === 'privatelink.vaultcore.azure.net',
    'keyvault: private endpoint with the privatelink.vaultcore.azure.net zone (the NetworkPolicy egress target)');

  // 8. AKS: managed identity, nodes in the AKS subnet, kubelet client id output.
  const aks = mod('aks');
  const [, cl] = resources(aks, 'azurerm_kubernetes_cluster')[0] || [null, {}];
  const ident = one(cl.identity);
  const pool = one(cl.default_node_pool);
  const np = one(cl.network_profile);
  check(/Assigned/.test(ident.type || '') && cl.service_principal === undefined, 'aks: managed identity, no service principal');
  check(pool.vnet_subnet_id === '${var.aks_subnet_id}' && Boolean(pool.zones), 'aks: nodes in the AKS subnet, across zones');
  check(np.network_policy === 'cilium' || np.network_policy === 'azure' || np.network_policy === 'calico', 'aks: a network policy engine enforces the NetworkPolicy', np.network_policy);
  const kid = one((aks.output || {}).kubelet_client_id).value || '';
  check(/kubelet_identity\[0\]\.client_id/.test(kid), 'aks: outputs the kubelet identity client id (AZURE_CLIENT_ID)', kid);

  // 8b. Node pools: a system pool for system pods only, and one autoscaled
  // user pool per zone so the autoscaler can add a node in the zone a
  // DoNotSchedule zone spread needs; balanced; maintenance windows.
  {
    const userPools = resources(aks, 'azurerm_kubernetes_cluster_node_pool');
    const perZone = userPools.filter(([, b]) => b.mode === 'User' && /each\.(key|value)/.test(String(b.for_each ? JSON.stringify(b.zones) : '')) && b.auto_scaling_enabled === true);
    check(pool.only_critical_addons_enabled === true && perZone.length === 1 && /var\.zones/.test(String(perZone[0][1].for_each)),
      'aks: a separate system pool (only_critical_addons_enabled) and one autoscaled user pool per zone (for_each over var.zones, zones = [each.key])',
      JSON.stringify({system_only: pool.only_critical_addons_enabled, user: userPools.map(([n, b]) => [n, b.mode, b.for_each, b.zones])}));
    const asp = one(cl.auto_scaler_profile);
    check(asp.balance_similar_node_groups === true, 'aks: the cluster autoscaler balances similar node groups (one per zone)', JSON.stringify(asp));
    const mw = ['maintenance_window_auto_upgrade', 'maintenance_window_node_os'].filter((k) => {
      const w = one(cl[k]);
      return !(w.frequency && w.duration && w.start_time && w.utc_offset !== undefined);
    });
    check(cl.automatic_upgrade_channel && cl.node_os_upgrade_channel && mw.length === 0,
      'aks: maintenance windows for the automatic cluster and node OS upgrades', 'missing or incomplete: ' + mw.join(', '));
    const kc = [one(pool.kubelet_config), ...userPools.map(([, b]) => one(b.kubelet_config))];
    check(kc.every((k) => k.container_log_max_size_mb === 50 && k.container_log_max_line === 5),
      'aks: every pool rotates container logs at 50 MiB x 5 files (the budget the pods\' ephemeral-storage limits hold)', JSON.stringify(kc));
  }

  // 8b'. Managed Prometheus: the add-on (which brings the PodMonitor CRD the
  // manifests use) and somewhere for the metrics to go.
  {
    const mm = cl.monitor_metrics || (cl.dynamic || {}).monitor_metrics;
    const dcra = resources(aks, 'azurerm_monitor_data_collection_rule_association');
    const dcr = (resources(aks, 'azurerm_monitor_data_collection_rule')[0] || [0, {}])[1];
    check(Boolean(mm) && resources(aks, 'azurerm_monitor_workspace').length === 1 && dcra.length === 1 &&
      /kubernetes_cluster\.this\.id/.test(dcra[0][1].target_resource_id || '') && /prometheus_forwarder/.test(JSON.stringify(dcr.data_sources || '')),
      'aks: managed Prometheus add-on (monitor_metrics) with an Azure Monitor workspace and a data collection rule associated with the cluster');
  }

  // 8c. The control-plane identity gets only what the load balancer and the
  // nodes need: the node subnet and the service's public IP, never a whole
  // resource group (which holds the NSGs and private DNS zones).
  {
    const grants = resources(aks, 'azurerm_role_assignment').map(([n, b]) => [n, b]).filter(([, b]) => /control_plane/.test(b.principal_id || ''));
    const scopes = grants.map(([, b]) => b.scope);
    const ok = scopes.length > 0 && scopes.every((sc) => sc === '${var.aks_subnet_id}' || sc === '${azurerm_public_ip.service.id}') &&
      scopes.includes('${azurerm_public_ip.service.id}');
    check(ok, 'aks: the cluster identity is scoped to the node subnet and the public IP, not the resource group', JSON.stringify(scopes));
  }

  // 8d. Workload Identity (optional, off by default): the cluster's OIDC
  // issuer, a user-assigned identity federated with paytrackr's
  // ServiceAccount, and Key Vault Secrets User for it.
  {
    const ids = resources(aks, 'azurerm_user_assigned_identity').filter(([n]) => n === 'workload');
    const feds = resources(aks, 'azurerm_federated_identity_credential');
    const fed = (feds[0] || [0, {}])[1];
    const kvGrant = resources(kv, 'azurerm_role_assignment').some(([, b]) => b.role_definition_name === 'Key Vault Secrets User' && /workload_object_id/.test(b.principal_id || ''));
    check(ids.length === 1 && feds.length === 1 && /oidc_issuer_url/.test(fed.issuer || '') && asArray(fed.audience).includes('api://AzureADTokenExchange') &&
      /^system:serviceaccount:/.test(fed.subject || '') && /workload_identity_enabled/.test(JSON.stringify(cl)) && /oidc_issuer_enabled/.test(JSON.stringify(cl)) && kvGrant,
      'workload identity: user-assigned identity federated with system:serviceaccount:<ns>:paytrackr (OIDC issuer, api://AzureADTokenExchange) and granted Key Vault Secrets User',
      JSON.stringify({ids: ids.length, fed, kvGrant}));
  }

  // 9. The k8s_environment output provides exactly the keys the overlays read.
  const tmpl = one((env.output || {}).k8s_environment).value || '';
  const tfKeys = new Set([...tmpl.matchAll(/^\s*([A-Z_]+)=/gm)].map((m) => m[1]));
  const mism = [];
  for (const o of fs.readdirSync(path.join(k8sDir, 'overlays'))) {
    const f = path.join(k8sDir, 'overlays', o, 'environment.env');
    if (!fs.existsSync(f)) continue;
    for (const [, k] of fs.readFileSync(f, 'utf8').matchAll(/^([A-Z_]+)=/gm)) if (!tfKeys.has(k)) mism.push(`${o}/environment.env: ${k} not produced by output k8s_environment`);
  }
  check(tfKeys.size > 0 && mism.length === 0, 'env output k8s_environment provides every key of the overlays\' environment.env', mism.join('\n'));

  console.log(out.join('\n'));
})().catch((e) => {
  console.log('not ok - terraform checks crashed\n# ' + String(e.stack || e).replace(/\n/g, '\n# '));
});
