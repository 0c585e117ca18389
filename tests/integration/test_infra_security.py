"""The security shape of the Bicep templates (issue #16), over the parsed templates:

1. people sign in, machines use keys: App Service Authentication (authsettingsV2) with Entra ID
   on the Function App, every route behind sign-in but exactly the machine routes;
2. least privilege: two identities (scoring, release), every data role scoped to one
   container, table or queue; the scoring identity cannot write the model registry nor sign;
   no Owner or account-wide role on the data accounts;
3. Key Vault: RBAC, soft delete, purge protection; the HSM release key (sign for the release
   identity and the approvers, read for the scoring identity); the pseudonym key and the
   webhook URL as Key Vault references; no @secure value in a non-secure parameter or output;
4. private networking with the production parameters (VNet integration, private endpoints,
   private DNS zones linked to the VNet, public access disabled), public in dev with the
   reason, and checkov's network suppressions on the dev shapes only;
5. an append-only data account: versioning, blob and container soft delete, change feed.

Helpers (the parser, the evaluator, the role resolver) are test_infra_bicep.py's.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from test_infra_bicep import (  # noqa: E402  (same directory; pytest puts it on sys.path)
    APP_ROLES, APPROVER_ROLES, BICEP_FILES, CONTRIBUTOR, KEY_VAULT_CRYPTO_USER, KEY_VAULT_READER, MAIN,
    OWNER, PARAMETER_FILES, RELEASE_ROLES, STORAGE_BLOB_DATA_OWNER,
    STORAGE_BLOB_DATA_READER, ModuleOutput, accessor_path, body, data_containers, deployed_app_settings,
    evaluate, main_module, main_values, module_call, module_file, module_symbol, only_resource, param_default,
    parameter_files, parse, resources, role_assignments, roles_of, setting_default, storage_names,
)

PROD = next(p for p in PARAMETER_FILES if p.name == "main.prod.parameters.json")
DEV = next(p for p in PARAMETER_FILES if p.name == "main.dev.parameters.json")

# The contract with the app (issue #16): these routes keep function keys, every other needs sign-in.
MACHINE_ROUTES = {"/api/score", "/api/predict", "/api/health", "/api/model", "/api/openapi.json"}
ANALYST_ROUTES = {"/api/dashboard", "/api/dashboard/{*path}", "/api/alerts", "/api/stats", "/api/labels"}
# The host's Event Grid webhook: Event Grid presents the blobs_extension system key, never a token.
HOST_WEBHOOKS = {"/runtime/webhooks/blobs"}

PRIVATE_DNS_ZONES = {"privatelink.blob.core.windows.net", "privatelink.queue.core.windows.net",
                     "privatelink.table.core.windows.net", "privatelink.servicebus.windows.net",
                     "privatelink.vaultcore.azure.net"}
NETWORK_CHECKS = {"CKV_AZURE_35", "CKV_AZURE_59", "CKV_AZURE_109", "CKV_AZURE_189"}


def function_app_routes() -> dict[str, str]:
    """'/api/<route>' -> authLevel of every HTTP function the app registers."""
    from function_app import indexed_functions  # get_functions() may be called only once per process

    routes = {}
    for fn in indexed_functions():
        for binding in fn.get_bindings():
            spec = binding.get_dict_repr()
            if spec.get("type") == "httpTrigger":
                routes[f"/api/{spec['route']}"] = str(spec.get("authLevel"))
    return routes


def auth_settings() -> dict[str, Any]:
    found = resources(module_file("functionapp"), "Microsoft.Web/sites/config")
    assert len(found) == 1, sorted(found)
    config, condition, loop = body(next(iter(found.values())))
    assert condition is None and loop is None, "sign-in is never optional"
    return config


# --------------------------------------------------------------------------------------
# 1. People sign in; machines use keys
# --------------------------------------------------------------------------------------
def test_every_route_needs_an_entra_sign_in_but_the_machine_routes():
    config = auth_settings()
    assert config["name"] == "authsettingsV2" and config["parent"] == "site"
    props = config["properties"]
    assert props["platform"]["enabled"] is True
    validation = props["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "RedirectToLoginPage"
    aad = props["identityProviders"]["azureActiveDirectory"]
    assert aad["enabled"] is True
    assert aad["registration"]["clientId"] == "entraClientId"
    assert "${entraTenantId}/v2.0" in aad["registration"]["openIdIssuer"]
    assert "clientSecretSettingName" not in aad["registration"], "no client secret: id_token sign-in"
    assert set(aad["validation"]["allowedAudiences"]) == {"entraClientId", "api://${entraClientId}"}
    assert props["httpSettings"]["requireHttps"] is True


def test_excluded_paths_are_exactly_the_machine_routes():
    excluded = set(evaluate(auth_settings()["properties"]["globalValidation"]["excludedPaths"], module_file("functionapp")))
    assert {p for p in excluded if p.startswith("/api/")} == MACHINE_ROUTES
    assert {p for p in excluded if not p.startswith("/api/")} == HOST_WEBHOOKS
    routes = function_app_routes()
    assert MACHINE_ROUTES <= set(routes), f"excluded paths that are no route of the app: {MACHINE_ROUTES - set(routes)}"
    assert ANALYST_ROUTES <= set(routes), "the analyst routes exist"
    assert not ANALYST_ROUTES & excluded, "analyst routes are behind sign-in"
    assert set(routes) == MACHINE_ROUTES | ANALYST_ROUTES, "a new route must be placed on one side of the contract"
    # a route that skips sign-in must keep its key: never anonymous
    for route in MACHINE_ROUTES:
        assert routes[route].upper().endswith("FUNCTION"), f"{route}: {routes[route]}"


def test_the_app_registration_is_a_required_parameter():
    assert param_default(MAIN, "entraClientId") is None, "no default: deploying without an app registration fails"
    decorators = {d["type"]: d.get("argument") for d in parse(MAIN)["parameters"]["entraClientId"]["decorators"]}
    assert decorators["min_length"] == decorators["max_length"] == 36  # a GUID
    tenant = param_default(MAIN, "entraTenantId")["function"]  # tenant().tenantId: the deployment's tenant
    assert tenant["type"] == "tenant" and "tenantId" in tenant["property_name"]
    call = module_call("functionapp")["params"]
    assert call["entraClientId"] == "entraClientId" and call["entraTenantId"] == "entraTenantId"
    for path, values in parameter_files():
        assert "entraClientId" not in values, f"{path.name}: pass the client id at deploy time (docs/DEPLOY.md)"


def test_analyst_auth_mode_is_entra_in_azure():
    assert deployed_app_settings()["FRAUD_ANALYST_AUTH"] == "entra"
    for path, values in parameter_files():
        assert "FRAUD_ANALYST_AUTH" not in (values.get("appSettingOverrides") or {}), path.name


# --------------------------------------------------------------------------------------
# 2. Least privilege
# --------------------------------------------------------------------------------------
def test_release_identity_may_only_write_models_and_sign():
    assert roles_of("release") == RELEASE_ROLES
    for a in role_assignments():
        if a["who"] == "release":
            assert a["condition"] is None


def test_scoring_identity_cannot_write_models_nor_sign():
    app = roles_of("app")
    assert (STORAGE_BLOB_DATA_READER, ("dataStorage", "container", "models")) in app
    on_models = [role for role, scope in app if scope == ("dataStorage", "container", "models")]
    assert on_models == [STORAGE_BLOB_DATA_READER]
    on_key = [role for role, scope in app if scope == ("keyVault", "key", "fraud-release")]
    assert on_key == [KEY_VAULT_READER], "verify with the public key; never Crypto User (sign)"
    assert KEY_VAULT_CRYPTO_USER not in {role for role, _ in app}
    # and nothing account-wide on the data account could write it either
    assert not [scope for _, scope in app if isinstance(scope, tuple) and scope[:2] == ("dataStorage", "account")]


def test_no_identity_holds_owner_or_account_wide_roles_on_data():
    for a in role_assignments():
        scope = a["scope"]
        assert a["role"] not in (OWNER, CONTRIBUTOR), f"{a['symbol']}: Owner/Contributor"
        if isinstance(scope, tuple) and scope[0] in ("dataStorage", "profileStorage"):
            assert scope[1] != "account", f"{a['symbol']}: account-wide role on {scope[0]}"
            assert a["role"] != STORAGE_BLOB_DATA_OWNER, a["symbol"]
        if a["role"] == STORAGE_BLOB_DATA_OWNER:
            # what the Functions host documents for its own storage, on the host account only
            assert (a["who"], scope) == ("app", ("hostStorage", "account")), a["symbol"]


def test_each_data_container_table_and_queue_has_the_app_role_it_needs():
    """Every container, table and queue on the data account gets exactly one role of the app
    identity, and every role names one that exists there (and on the profile accounts)."""
    app = [(role, scope) for role, scope in roles_of("app") if isinstance(scope, tuple) and scope[0] == "dataStorage"]
    by_kind: dict[str, list[str]] = {}
    for _, (_, kind, name) in app:
        by_kind.setdefault(kind, []).append(name)
    assert sorted(by_kind["container"]) == sorted(data_containers())
    assert sorted(by_kind["table"]) == sorted(storage_names("dataStorage", "tables"))
    assert sorted(by_kind["queue"]) == sorted(storage_names("dataStorage", "queues"))
    for role, (_, kind, name) in app:
        if kind == "container" and name in ("models", "training-data"):
            assert role == STORAGE_BLOB_DATA_READER, name
    profile = [scope for _, scope in roles_of("app") if isinstance(scope, tuple) and scope[0] == "profileStorage"]
    assert profile == [("profileStorage", "table", setting_default("FRAUD_PROFILE_TABLE"))]
    assert storage_names("profileStorage", "tables") == {setting_default("FRAUD_PROFILE_TABLE")}


def test_release_approvers_are_optional():
    approver = [a for a in role_assignments() if a["who"] == "approver"]
    assert sorted(((a["role"], a["scope"]) for a in approver), key=repr) == APPROVER_ROLES
    for a in approver:
        assert "releaseApproverPrincipalId" in json.dumps(a["condition"]), a["symbol"]
    assert param_default(MAIN, "releaseApproverPrincipalId") == ""


def test_the_model_storage_connection_is_the_release_identity_on_the_data_account():
    deployed = deployed_app_settings()
    identity = module_symbol("identity")
    assert accessor_path(deployed["FRAUD_MODEL_STORAGE__clientId"]) == [identity, "outputs", "releaseClientId"]
    assert accessor_path(deployed["FRAUD_MODEL_STORAGE__blobServiceUri"]) == ["dataStorage", "outputs", "blobEndpoint"]
    assert deployed["FRAUD_MODEL_STORAGE__credential"] == "managedidentity"
    for name in ("FRAUD_DATA_STORAGE__clientId", "AzureWebJobsStorage__clientId", "EventHubConnection__clientId"):
        assert accessor_path(deployed[name]) == [identity, "outputs", "clientId"], name
    assert evaluate(deployed["FRAUD_MODEL_CONTAINER"], MAIN, main_values()) == "models"


# --------------------------------------------------------------------------------------
# 3. Key Vault
# --------------------------------------------------------------------------------------
VAULT_SHAPES = ("vault", "vault-public")
NETWORK_PROPERTIES = ("publicNetworkAccess", "networkAcls")


def _without_network(resource: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(resource))
    for key in NETWORK_PROPERTIES:
        copy["properties"].pop(key, None)
    return copy


@pytest.mark.parametrize("shape", VAULT_SHAPES)
def test_vault_is_rbac_soft_deleting_and_purge_protected(shape):
    vault = only_resource(module_file(shape), "Microsoft.KeyVault/vaults")
    props = vault["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True and props["enablePurgeProtection"] is True
    assert props["softDeleteRetentionInDays"] == "softDeleteRetentionInDays"
    assert props["sku"]["name"] == "premium", "HSM-backed keys"
    assert "accessPolicies" not in props
    assert props["enabledForTemplateDeployment"] is False


@pytest.mark.parametrize("pair", [("storageaccount", "storageaccount-public", "Microsoft.Storage/storageAccounts"),
                                  ("vault", "vault-public", "Microsoft.KeyVault/vaults")], ids=lambda p: p[0])
def test_the_two_network_shapes_differ_only_in_network(pair):
    private, public, type_ = pair
    a, b = only_resource(module_file(private), type_), only_resource(module_file(public), type_)
    assert _without_network(a) == _without_network(b)
    assert a["properties"]["publicNetworkAccess"] == "Disabled"
    assert a["properties"]["networkAcls"]["defaultAction"] == "Deny"
    assert b["properties"]["publicNetworkAccess"] == "Enabled"


def test_release_key_is_an_hsm_ec_p256_signing_key():
    key = only_resource(module_file("keyvault"), "Microsoft.KeyVault/vaults/keys")
    assert evaluate(key["name"], module_file("keyvault"), {"name": "kv"}) == "kv/fraud-release"
    props = key["properties"]
    assert props["kty"] == "EC-HSM" and props["curveName"] == "P-256"
    assert set(props["keyOps"]) == {"sign", "verify"}
    assert props["attributes"]["exportable"] is False
    deployed = deployed_app_settings()
    assert accessor_path(deployed["FRAUD_RELEASE_KEY"]) == ["keyVault", "outputs", "releaseKeyUri"]
    uri = evaluate(parse(module_file("keyvault"))["outputs"]["releaseKeyUri"]["value"], module_file("keyvault"),
                   {"name": "kv", "vaultUri": "https://kv.vault.azure.net/"})
    assert uri == "https://kv.vault.azure.net/keys/fraud-release", "the key's URI without a version"


def test_secrets_reach_the_app_as_key_vault_references():
    deployed = deployed_app_settings()
    assert deployed["FRAUD_PSEUDONYM_KEY"] == "@Microsoft.KeyVault(SecretUri=${keyVault.outputs.pseudonymKeySecretUri})"
    webhook = deployed["FRAUD_ALERT_WEBHOOK_URL"]
    assert evaluate(webhook, MAIN, main_values()) == ""  # no URL given: no webhook
    assert evaluate(webhook, MAIN, dict(main_values(), alertWebhookUrl="https://x")) == ModuleOutput(
        "@Microsoft.KeyVault(SecretUri=${keyVault.outputs.alertWebhookSecretUri})")
    kv = module_file("keyvault")
    secrets = resources(kv, "Microsoft.KeyVault/vaults/secrets")
    assert len(secrets) == 2
    for symbol, res in secrets.items():
        config, condition, _ = body(res)
        source = config["properties"]["value"]
        assert any(d["type"] == "secure" for d in parse(kv)["parameters"][source]["decorators"]), symbol
        assert source in json.dumps(condition), f"{symbol}: made only when its value is given"
        assert config["properties"]["contentType"], symbol
    site = only_resource(module_file("functionapp"), "Microsoft.Web/sites")
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"


def _mentions(expr: Any, name: str) -> bool:
    """Whether an expression passes the value of <name> on (a mention inside empty() does not)."""
    if isinstance(expr, str):
        return expr == name or re.search(r"\$\{[^}]*\b%s\b" % re.escape(name), expr) is not None
    if isinstance(expr, dict):
        if expr.get("function", {}).get("type") == "empty":
            return False
        return any(_mentions(v, name) for v in expr.values())
    if isinstance(expr, list):
        return any(_mentions(v, name) for v in expr)
    return False


def _secure_params(path: Path) -> set[str]:
    return {n for n, p in parse(path).get("parameters", {}).items() if any(d["type"] == "secure" for d in p["decorators"])}


def test_secure_values_never_reach_a_non_secure_parameter_or_an_output():
    """The finding: the @secure webhook URL was passed into a non-secure module parameter (and
    so kept in the deployment history)."""
    assert {"alertWebhookUrl", "pseudonymKey"} <= _secure_params(MAIN)
    for path in [MAIN, *BICEP_FILES]:
        doc = parse(path)
        secure = _secure_params(path)
        for name, output in doc.get("outputs", {}).items():
            for param in secure:
                assert not _mentions(output["value"], param), f"{path.name}: output {name} carries {param}"
        for symbol, module in doc.get("modules", {}).items():
            target = (path.parent / module["detail"]["path"]).resolve()
            for param, value in body(module)[0]["params"].items():
                if any(_mentions(value, s) for s in secure):
                    assert param in _secure_params(target), f"{path.name}:{symbol}: {param} takes a secure value"
    # the webhook URL itself goes only to the vault; the app setting is a reference
    assert module_call("keyvault")["params"]["alertWebhookUrl"] == "alertWebhookUrl"
    assert not _mentions(parse(MAIN)["variables"]["appSettings"]["value"], "alertWebhookUrl")
    assert not _mentions(parse(MAIN)["variables"]["appSettings"]["value"], "pseudonymKey")


def test_key_vault_roles_are_scoped_to_one_key_or_secret():
    vault_roles = [a for a in role_assignments() if isinstance(a["scope"], tuple) and a["scope"][0] == "keyVault"]
    assert vault_roles and all(a["scope"][1] in ("key", "secret") for a in vault_roles)
    assert {(a["who"], a["role"], a["scope"]) for a in vault_roles} == {
        ("app", KEY_VAULT_READER, ("keyVault", "key", "fraud-release")),
        ("release", KEY_VAULT_CRYPTO_USER, ("keyVault", "key", "fraud-release")),
        ("approver", KEY_VAULT_CRYPTO_USER, ("keyVault", "key", "fraud-release")),
        ("app", "4633458b-17de-408a-b874-0445c86b69e6", ("keyVault", "secret", "pseudonym-key")),
        ("app", "4633458b-17de-408a-b874-0445c86b69e6", ("keyVault", "secret", "alert-webhook-url")),
    }
    assert set(APP_ROLES) >= {(r, s) for w, r, s in [(a["who"], a["role"], a["scope"]) for a in vault_roles] if w == "app"}


# --------------------------------------------------------------------------------------
# 4. Private networking in production, public in dev
# --------------------------------------------------------------------------------------
def test_parameter_files_choose_the_network_shape():
    assert main_values(PROD)["privateNetworking"] is True
    assert main_values(DEV)["privateNetworking"] is False
    assert param_default(MAIN, "privateNetworking") is False
    reason = parse(MAIN)["parameters"]["privateNetworking"]["decorators"][0]["argument"]
    assert "laptop" in reason and "identity" in reason, "dev's public access says why, and what still guards it"


def _module_params(symbol: str, values: dict[str, Any], scope: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters main.bicep passes to module <symbol> (a loop's: for its first item)."""
    config, _, loop = main_module(symbol)
    if loop is not None and scope is None:
        items = evaluate(loop["detail"]["array_name"], MAIN, values)
        assert items, f"{symbol}: the loop is empty for these values"
        scope = {loop["detail"]["item_name"]: items[0]}
    return {name: evaluate(expr, MAIN, values, scope) for name, expr in config["params"].items()
            if not (isinstance(expr, dict) and "index_accessor" in json.dumps(expr))}


def _chosen(path: Path, values: dict[str, Any]) -> list[str]:
    """The modules <path> deploys (its network shapes) whose condition holds for <values>."""
    chosen = []
    for symbol, module in parse(path).get("modules", {}).items():
        config, condition, _ = body(module)
        if evaluate(condition, path, values) if condition is not None else True:
            chosen.append(module["detail"]["path"])
    return chosen


def test_production_deploys_private_endpoints_with_dns_and_vnet_integration():
    values = main_values(PROD)
    # the VNet: a subnet delegated to Flex Consumption's VNet integration, one for private endpoints
    network, condition, _ = main_module("network")
    assert condition == "privateNetworking"
    net = module_file("network")
    vnet = only_resource(net, "Microsoft.Network/virtualNetworks")
    subnets = {s["name"]: s["properties"] for s in vnet["properties"]["subnets"]}
    assert [d["properties"]["serviceName"] for d in subnets["app"]["delegations"]] == ["Microsoft.App/environments"]
    assert "private-endpoints" in subnets and not subnets["private-endpoints"].get("delegations")
    for props in subnets.values():
        assert props["networkSecurityGroup"]["id"]
    zones = evaluate(parse(net)["variables"]["privateDnsZoneNames"]["value"], net)
    assert set(zones) == PRIVATE_DNS_ZONES
    links, _, loop = body(resources(net, "Microsoft.Network/privateDnsZones/virtualNetworkLinks")["privateDnsZoneLinks"])
    assert loop["detail"]["array_name"] == "privateDnsZoneNames"
    assert links["properties"]["virtualNetwork"]["id"] == {"operator": {"type": "property_accessor", "operands": {
        "operand_1": "vnet", "operand_2": "id"}}}
    assert links["properties"]["registrationEnabled"] is False
    # VNet integration of the app
    app = _module_params(module_symbol("functionapp"), values)
    assert isinstance(app["virtualNetworkSubnetId"], ModuleOutput) and "appSubnetId" in app["virtualNetworkSubnetId"]
    site = only_resource(module_file("functionapp"), "Microsoft.Web/sites")
    assert "virtualNetworkSubnetId" in json.dumps(site["properties"]["virtualNetworkSubnetId"])
    # every storage account: private shape, a private endpoint per service it serves
    storage = module_file("storage")
    services = {"hostStorage": ["blob", "queue", "table"], "dataStorage": ["blob", "queue", "table"],
                "profileStorage": ["table"]}
    for symbol, expected in services.items():
        params = _module_params(symbol, values)
        assert params["privateNetworking"] is True, symbol
        assert isinstance(params["privateEndpointSubnetId"], ModuleOutput), symbol
        assert isinstance(params["privateDnsZoneIds"], ModuleOutput), symbol
        assert params.get("privateEndpointServices", param_default(storage, "privateEndpointServices")) == expected, symbol
        assert _chosen(storage, params) == ["storageaccount.bicep"], symbol
    endpoints, condition, loop = body(resources(storage, "Microsoft.Network/privateEndpoints")["privateEndpoints"])
    assert condition == "privateNetworking" and loop["detail"]["array_name"] == "privateEndpointServices"
    link = endpoints["properties"]["privateLinkServiceConnections"][0]["properties"]
    assert link["groupIds"] == [loop["detail"]["item_name"]] and link["privateLinkServiceId"] == "accountId"
    groups, condition, _ = body(resources(storage, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")["privateDnsZoneGroups"])
    assert condition == "privateNetworking"
    assert "privateDnsZoneIds" in json.dumps(groups["properties"]["privateDnsZoneConfigs"])
    # Event Hubs and Key Vault: public access off, a private endpoint in their zone
    eh_params = _module_params(module_symbol("eventhubs"), values)
    eh = module_file("eventhubs")
    namespace = only_resource(eh, "Microsoft.EventHub/namespaces")
    assert evaluate(namespace["properties"]["publicNetworkAccess"], eh, eh_params) == "Disabled"
    assert evaluate(namespace["properties"]["publicNetworkAccess"], eh, dict(eh_params, privateNetworking=False)) == "Enabled"
    assert isinstance(eh_params["privateDnsZoneId"], ModuleOutput) and eh_params["privateDnsZoneId"].endswith(".namespace")
    kv_params = _module_params(module_symbol("keyvault"), values)
    assert isinstance(kv_params["privateDnsZoneId"], ModuleOutput) and kv_params["privateDnsZoneId"].endswith(".vault")
    assert _chosen(module_file("keyvault"), kv_params) == ["vault.bicep"]
    for path, group in ((eh, "namespace"), (module_file("keyvault"), "vault")):
        endpoint, condition, _ = body(next(iter(resources(path, "Microsoft.Network/privateEndpoints").values())))
        assert condition == "privateNetworking", path.name
        assert endpoint["properties"]["privateLinkServiceConnections"][0]["properties"]["groupIds"] == [group]
        dns = next(iter(resources(path, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups").values()))
        assert body(dns)[0]["properties"]["privateDnsZoneConfigs"][0]["properties"]["privateDnsZoneId"] == "privateDnsZoneId"


def test_dev_is_public_with_the_reason():
    values = main_values(DEV)
    assert evaluate("endpointSubnetId", MAIN, values) == ""
    for symbol in ("hostStorage", "dataStorage"):
        params = _module_params(symbol, values)
        assert params["privateNetworking"] is False
        assert _chosen(module_file("storage"), params) == ["storageaccount-public.bicep"]
    assert _chosen(module_file("keyvault"), _module_params("keyVault", values)) == ["vault-public.bicep"]
    assert _module_params(module_symbol("functionapp"), values)["virtualNetworkSubnetId"] == ""
    for shape in ("storageaccount-public", "vault-public"):
        header = module_file(shape).read_text().split("\n\n")[0]
        assert "dev" in header and "laptop" in header, f"{shape}.bicep says why it is public"


def _skips(path: Path) -> dict[str, str]:
    return dict(re.findall(r"//checkov:skip=(CKV\w+):\s*(.*)", path.read_text()))


def test_checkov_network_suppressions_cover_the_dev_shapes_only():
    holders = {path.name: set(_skips(path)) & NETWORK_CHECKS for path in BICEP_FILES}
    holders = {name: checks for name, checks in holders.items() if checks}
    assert holders == {"storageaccount-public.bicep": {"CKV_AZURE_35", "CKV_AZURE_59"},
                       "vault-public.bicep": {"CKV_AZURE_109", "CKV_AZURE_189"}}
    for name in holders:
        for check, reason in _skips(module_file(name.removesuffix(".bicep"))).items():
            if check in NETWORK_CHECKS:
                assert reason.startswith("Dev shape only"), f"{name}: {check}"
    for shape in ("storageaccount", "vault"):
        assert not set(_skips(module_file(shape))) & NETWORK_CHECKS, f"{shape}.bicep is checked in full"


# --------------------------------------------------------------------------------------
# 5. Append-only data
# --------------------------------------------------------------------------------------
def test_data_blobs_are_versioned_and_soft_deleted():
    storage = module_file("storage")
    blob = only_resource(storage, "Microsoft.Storage/storageAccounts/blobServices")["properties"]
    assert blob["deleteRetentionPolicy"] == {"enabled": True, "days": "softDeleteDays"}
    assert blob["containerDeleteRetentionPolicy"] == {"enabled": True, "days": "containerSoftDeleteDays"}
    assert blob["changeFeed"] == {"enabled": "enableChangeFeed"}
    for path in PARAMETER_FILES:
        values = main_values(path)
        data = _module_params("dataStorage", values)
        assert data["enableVersioning"] is True, path.name
        assert data["softDeleteDays"] == values["blobSoftDeleteDays"] and data["containerSoftDeleteDays"] == values["containerSoftDeleteDays"]
        assert data["enableChangeFeed"] is ("prod" in path.name), path.name
    # the profile accounts hold no blob data (a table only), the host account the package only
    assert _module_params("profileStorage", main_values(), {"account": {"name": "x"}})["containers"] == []
    archive = only_resource(module_file("decisionarchive"), "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert archive["properties"]["immutableStorageWithVersioning"] == {"enabled": True}


def test_post_deploy_reads_outputs_the_template_has():
    """infra/post-deploy.sh makes the pseudonym key and grants it from the deployment's outputs."""
    script = (MAIN.parent.parent / "post-deploy.sh").read_text()
    used = set(re.findall(r'\$\(output (\w+)\)', script))
    assert {"keyVaultName", "identityPrincipalId", "functionAppName", "eventGridSystemTopicName"} <= used
    assert used <= set(parse(MAIN)["outputs"]), sorted(used - set(parse(MAIN)["outputs"]))
    # the secret is created only when missing, and the role is scoped to that one secret
    assert 'az resource show --ids "$SECRET_ID"' in script and '--scope "$SECRET_ID"' in script
    assert '"Key Vault Secrets User"' in script
    secret = parse(module_file("keyvault"))["variables"]["pseudonymSecretName"]["value"]
    assert f'SECRET_ID="$VAULT_ID/secrets/{secret}"' in script, "the same secret the app setting references"
