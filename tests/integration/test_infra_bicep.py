"""The Bicep templates (infra/bicep) against the app: settings, roles, secrets, storage, plan.

The templates are parsed with pycep-parser, the Bicep parser checkov uses, pinned to the
version checkov pins: a file it cannot parse fails here too, instead of being skipped by
checkov as a "parsing error". pycep renders a Bicep identifier and a string literal the
same way (both as str), so references are told apart by looking the name up among the
file's parameters, variables, resources and modules.

What is checked:
1. every setting of ``shared.config.SETTINGS`` (connection settings expanded to their
   identity form) is set in the function app's app settings, and nothing else;
2. the app's user-assigned identity holds exactly the roles the app needs (by role GUID),
   and the producer's send role is optional;
3. no secret, key or key-bearing connection string in any template, parameter file or
   script (and ``local.settings.example.json``, if present, only has emulator strings);
4. storage: TLS 1.2, no public blob access, no shared keys, HTTPS only, every container,
   table and queue the settings name;
5. the plan is Flex Consumption (FC1), Python 3.11/3.12, identity-based deployment storage.
"""
from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.config import SETTINGS  # noqa: E402
from shared.adapters.storage_account import AZURITE_ACCOUNT, AZURITE_KEY  # noqa: E402

try:
    from pycep import BicepParser
except ImportError as exc:  # pragma: no cover - environment problem, reported clearly
    raise ImportError(
        "tests/test_infra_bicep.py needs pycep-parser (the version checkov pins, see "
        "requirements-infra.txt) in the test venv: pip install -r requirements-dev.txt"
    ) from exc

INFRA = ROOT / "infra"
BICEP = INFRA / "bicep"
MAIN = BICEP / "main.bicep"
MODULES = BICEP / "modules"
BICEP_FILES = sorted(BICEP.rglob("*.bicep"))
PARAMETER_FILES = sorted(BICEP.glob("*.parameters.json"))
LOCAL_SETTINGS_EXAMPLE = ROOT / "local.settings.example.json"

# Built-in role definitions (ids are the same in every tenant).
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
EVENT_HUBS_DATA_RECEIVER = "a638d3c7-ab3a-418d-83e6-5f17a39d4fde"
EVENT_HUBS_DATA_SENDER = "2b629674-e913-4c01-ae53-ef4638d8f975"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

# role -> the resource type it must be scoped to
APP_ROLES = {
    STORAGE_BLOB_DATA_OWNER: "Microsoft.Storage/storageAccounts",
    STORAGE_QUEUE_DATA_CONTRIBUTOR: "Microsoft.Storage/storageAccounts",
    STORAGE_TABLE_DATA_CONTRIBUTOR: "Microsoft.Storage/storageAccounts",
    EVENT_HUBS_DATA_RECEIVER: "Microsoft.EventHub/namespaces/eventhubs",
    MONITORING_METRICS_PUBLISHER: "Microsoft.Insights/components",
}

# App settings the platform needs besides the app's own.
PLATFORM_SETTINGS = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}

# Settings Flex Consumption rejects or ignores (runtime/deployment moved to functionAppConfig).
FLEX_DEPRECATED_SETTINGS = {
    "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY", "FUNCTIONS_WORKER_PROCESS_COUNT", "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE",
    "WEBSITE_NODE_DEFAULT_VERSION", "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT", "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD", "AzureWebJobsStorage",
}
FLEX_DEPRECATED_SITE_CONFIG = {"linuxFxVersion", "alwaysOn", "functionAppScaleLimit", "preWarmedInstanceCount",
                               "minimumElasticInstanceCount", "use32BitWorkerProcess", "javaVersion", "netFrameworkVersion"}

# Storage the app and the retraining triggers use, besides what the settings name.
REQUIRED_CONTAINERS = {"models", "dead-letter", "labels", "monitoring", "training-data", "retrain-requests"}
REQUIRED_TABLES = {"profiles", "scores", "merchantrisk", "labels"}
REQUIRED_QUEUES = {"fraud-alerts"}

FLEX_PYTHON_VERSIONS = {"3.11", "3.12"}


# --------------------------------------------------------------------------------------
# Reading the templates
# --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def parse(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)


def module_file(name: str) -> Path:
    return MODULES / f"{name}.bicep"


def body(resource: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
    """(the resource's or module's object, its `if` condition, its loop) from pycep's forms."""
    config = resource["config"]
    if "loop_type" in config:
        return config["config"], config.get("condition"), config["loop_type"]
    if set(config) == {"condition", "config"}:
        return config["config"], config["condition"], None
    return config, None, None


def resources(path: Path, type_: str | None = None, *, existing: bool | None = False) -> dict[str, dict[str, Any]]:
    found = {}
    for name, res in parse(path).get("resources", {}).items():
        if type_ is not None and res["type"] != type_:
            continue
        if existing is not None and res["existing"] != existing:
            continue
        found[name] = res
    return found


def only_resource(path: Path, type_: str) -> dict[str, Any]:
    found = resources(path, type_)
    assert len(found) == 1, f"{path.name}: expected one {type_}, found {sorted(found)}"
    return body(next(iter(found.values())))[0]


def module_call(module_path: str) -> dict[str, Any]:
    """The module block of main.bicep that deploys modules/<module_path>.bicep."""
    calls = [m for m in parse(MAIN).get("modules", {}).values() if m["detail"]["path"] == f"modules/{module_path}.bicep"]
    assert len(calls) == 1, f"main.bicep: expected one module using modules/{module_path}.bicep"
    return body(calls[0])[0]


def module_symbol(module_path: str) -> str:
    names = [n for n, m in parse(MAIN)["modules"].items() if m["detail"]["path"] == f"modules/{module_path}.bicep"]
    assert len(names) == 1
    return names[0]


def symbols(path: Path) -> set[str]:
    doc = parse(path)
    return {name for part in ("parameters", "variables", "resources", "modules") for name in doc.get(part, {})}


def is_literal(value: Any, path: Path) -> bool:
    """A string literal (as opposed to a reference to a parameter, variable, resource or module)."""
    return isinstance(value, str) and value not in symbols(path)


def accessor_path(value: Any) -> list[str] | None:
    """`a.b.c` -> ["a", "b", "c"]; None for anything else."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and value.get("operator", {}).get("type") == "property_accessor":
        operands = value["operator"]["operands"]
        head, rest = accessor_path(operands["operand_1"]), accessor_path(operands["operand_2"])
        if head is not None and rest is not None:
            return head + rest
    return None


def resolve_object(value: Any, path: Path) -> dict[str, Any]:
    """The keys an object expression certainly has: object literals, variables holding them,
    and union() of those. Parameters contribute nothing (their default may be overridden)."""
    doc = parse(path)
    if isinstance(value, dict) and "function" not in value and "operator" not in value:
        return dict(value)
    if isinstance(value, str):
        if value in doc.get("variables", {}):
            return resolve_object(doc["variables"][value]["value"], path)
        if value in doc.get("parameters", {}):
            return {}
        raise AssertionError(f"{path.name}: cannot resolve {value!r} to an object")
    if isinstance(value, dict) and value.get("function", {}).get("type") == "union":
        merged: dict[str, Any] = {}
        for arg in value["function"]["parameters"].values():
            merged.update(resolve_object(arg, path))
        return merged
    raise AssertionError(f"{path.name}: cannot resolve {value!r} to an object")


def resolve_string_list(value: Any, path: Path) -> list[Any]:
    doc = parse(path)
    if isinstance(value, str) and value in doc.get("variables", {}):
        value = doc["variables"][value]["value"]
    assert isinstance(value, list), f"{path.name}: {value!r} is not an array literal"
    return [doc["variables"][v]["value"] if isinstance(v, str) and v in doc.get("variables", {}) else v for v in value]


def param_default(path: Path, name: str) -> Any:
    return parse(path)["parameters"][name].get("default")


def allowed_values(path: Path, name: str) -> list[Any] | None:
    for decorator in parse(path)["parameters"][name]["decorators"]:
        if decorator["type"] == "allowed":
            return decorator["argument"]
    return None


def parameter_files() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in PARAMETER_FILES:
        yield path, {k: v.get("value") for k, v in json.loads(path.read_text())["parameters"].items()}


def expected_app_settings() -> set[str]:
    names = set()
    for s in SETTINGS:
        if s.kind == "connection":
            names.update(f"{s.name}__{prop}" for prop in s.identity_properties)
        else:
            names.add(s.name)
    return names


def deployed_app_settings() -> dict[str, Any]:
    """name -> value expression of every app setting the function app gets."""
    site = only_resource(module_file("functionapp"), "Microsoft.Web/sites")
    loop = site["properties"]["siteConfig"]["appSettings"]
    fa = module_file("functionapp")
    # [for setting in items(X): {name: setting.key, value: setting.value}]
    assert loop.get("loop_type", {}).get("type") == "object", "siteConfig.appSettings must be a loop over items(<object>)"
    item, source = loop["loop_type"]["detail"]["item_name"], loop["loop_type"]["detail"]["object_name"]
    assert loop["config"] == {
        "name": {"operator": {"type": "property_accessor", "operands": {"operand_1": item, "operand_2": "key"}}},
        "value": {"operator": {"type": "property_accessor", "operands": {"operand_1": item, "operand_2": "value"}}},
    }
    settings = resolve_object(source, fa)  # the module's own (platform) settings
    # ... plus the module's appSettings parameter, which main.bicep fills
    source_expr = parse(fa)["variables"][source]["value"] if source in parse(fa).get("variables", {}) else source
    assert "appSettings" in json.dumps(source_expr), "the app settings loop must include the appSettings parameter"
    from_main = resolve_object(module_call("functionapp")["params"]["appSettings"], MAIN)
    overlap = set(settings) & set(from_main)
    assert not overlap, f"set both in main.bicep and functionapp.bicep: {sorted(overlap)}"
    return {**from_main, **settings}


# --------------------------------------------------------------------------------------
# The parser and the checkov pin
# --------------------------------------------------------------------------------------
def test_templates_exist():
    assert MAIN.exists()
    for name in ("storage", "eventhubs", "monitoring", "identity", "functionapp", "roles", "eventgrid"):
        assert module_file(name).exists(), name
    assert {p.name for p in PARAMETER_FILES} >= {"main.dev.parameters.json", "main.prod.parameters.json"}


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(BICEP)))
def test_every_bicep_file_parses(path):
    """checkov skips a file pycep cannot parse (it is only counted as a parsing error)."""
    doc = parse(path)
    assert doc.get("resources") or doc.get("modules"), f"{path.name} declares nothing"


def test_test_parser_is_the_one_checkov_pins():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements-infra.txt").read_text(), re.M))
    assert "checkov" in pins and "pycep-parser" in pins, "requirements-infra.txt must pin checkov and pycep-parser"
    assert metadata.version("pycep-parser") == pins["pycep-parser"], (
        "the test venv's pycep-parser differs from the one checkov is pinned with in requirements-infra.txt"
    )


def test_every_module_is_deployed_by_main():
    used = {m["detail"]["path"] for m in parse(MAIN)["modules"].values()}
    assert used == {f"modules/{p.name}" for p in MODULES.glob("*.bicep")}


def test_main_parameters_cover_parameter_files():
    declared = set(parse(MAIN)["parameters"])
    for path, values in parameter_files():
        unknown = set(values) - declared
        assert not unknown, f"{path.name} sets parameters main.bicep does not declare: {sorted(unknown)}"
        required = {n for n, p in parse(MAIN)["parameters"].items() if "default" not in p}
        assert required <= set(values), f"{path.name} misses required parameters {sorted(required - set(values))}"


# --------------------------------------------------------------------------------------
# 1. App settings
# --------------------------------------------------------------------------------------
def test_every_setting_the_code_reads_is_deployed():
    deployed = deployed_app_settings()
    missing = expected_app_settings() - set(deployed)
    assert not missing, (
        f"settings read by the code (shared/config.py) but not set by infra/bicep/main.bicep: {sorted(missing)}; "
        "add them to the appSettings variable of main.bicep (connection settings as <NAME>__<property>)"
    )


def test_no_setting_is_deployed_that_the_code_does_not_read():
    extra = set(deployed_app_settings()) - expected_app_settings() - PLATFORM_SETTINGS
    assert not extra, f"app settings not in shared/config.py SETTINGS: {sorted(extra)}"


def test_connection_settings_are_identity_based():
    deployed = deployed_app_settings()
    identity = module_symbol("identity")
    for s in (s for s in SETTINGS if s.kind == "connection"):
        assert s.name not in deployed, f"{s.name} must be set in identity form, not as a connection string"
        if "credential" in s.identity_properties:
            assert deployed[f"{s.name}__credential"] == "managedidentity"
        if "clientId" in s.identity_properties:
            assert accessor_path(deployed[f"{s.name}__clientId"]) == [identity, "outputs", "clientId"], (
                f"{s.name}__clientId must be the app's user-assigned identity"
            )
        for prop in s.identity_properties:
            if prop.endswith("ServiceUri") or prop == "fullyQualifiedNamespace":
                value = deployed[f"{s.name}__{prop}"]
                assert not is_literal(value, MAIN), f"{s.name}__{prop} should come from the deployed resource"


def test_plain_setting_values_are_registry_defaults_or_references():
    """A literal in the template must be the code's default (change values via appSettingOverrides)."""
    deployed = deployed_app_settings()
    for s in (s for s in SETTINGS if s.kind == "plain"):
        value = deployed[s.name]
        if is_literal(value, MAIN):
            assert value == s.default, f"{s.name}: template has {value!r}, shared/config.py default is {s.default!r}"
        else:
            assert value is not None


def test_event_hub_names_match_the_settings_defaults():
    defaults = {s.name: s.default for s in SETTINGS}
    call = module_call("eventhubs")["params"]
    variables = parse(MAIN)["variables"]
    names = {}
    for param in ("eventHubName", "consumerGroupName"):
        value = call[param]
        names[param] = variables[value]["value"] if value in variables else value
    assert names["eventHubName"] == defaults["EVENTHUB_NAME"]
    assert names["consumerGroupName"] == defaults["EVENTHUB_CONSUMER_GROUP"]
    deployed = deployed_app_settings()
    eventhubs = module_symbol("eventhubs")
    assert accessor_path(deployed["EVENTHUB_NAME"]) == [eventhubs, "outputs", "eventHubName"]
    assert accessor_path(deployed["EVENTHUB_CONSUMER_GROUP"]) == [eventhubs, "outputs", "consumerGroupName"]


def test_application_insights_uses_entra_id_as_the_app_identity():
    deployed = deployed_app_settings()
    auth = deployed["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert auth == "Authorization=AAD;ClientId=${identityClientId}"
    assert accessor_path(module_call("functionapp")["params"]["identityClientId"]) == [module_symbol("identity"), "outputs", "clientId"]
    component = only_resource(module_file("monitoring"), "Microsoft.Insights/components")
    assert component["properties"]["DisableLocalAuth"] is True


def test_no_flex_deprecated_settings():
    deployed = set(deployed_app_settings())
    assert not deployed & FLEX_DEPRECATED_SETTINGS
    site = only_resource(module_file("functionapp"), "Microsoft.Web/sites")
    assert not set(site["properties"]["siteConfig"]) & FLEX_DEPRECATED_SITE_CONFIG


def test_parameter_files_override_only_registered_plain_settings():
    plain = {s.name for s in SETTINGS if s.kind == "plain"}
    for path, values in parameter_files():
        overrides = values.get("appSettingOverrides") or {}
        unknown = set(overrides) - plain
        assert not unknown, f"{path.name}: appSettingOverrides of unregistered settings {sorted(unknown)}"
        assert "FRAUD_ALERT_WEBHOOK_URL" not in overrides, "the webhook URL is a credential: pass alertWebhookUrl at deploy time"
        assert "alertWebhookUrl" not in values, f"{path.name}: alertWebhookUrl is a credential: pass it at deploy time"
        assert all(isinstance(v, str) for v in overrides.values()), f"{path.name}: app setting values must be strings"


# --------------------------------------------------------------------------------------
# 2. Roles
# --------------------------------------------------------------------------------------
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def role_assignments() -> list[dict[str, Any]]:
    """Every role assignment of every template: role GUID, principal, scope, condition, name."""
    found = []
    for path in BICEP_FILES:
        doc = parse(path)
        variables = doc.get("variables", {})
        for symbol, res in resources(path, "Microsoft.Authorization/roleAssignments").items():
            config, condition, loop = body(res)
            assert loop is None, f"{path.name}:{symbol}: write role assignments out one by one"
            role_id = config["properties"]["roleDefinitionId"]["function"]
            assert role_id["type"] in ("subscription_resource_id", "resource_id")
            assert role_id["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
            role = role_id["parameters"]["resource_name_1"]
            role = variables[role]["value"] if role in variables else role
            assert GUID.match(role), f"{path.name}:{symbol}: role {role!r} is not a role definition GUID"
            scope = config.get("scope")
            scope_type = doc["resources"][scope]["type"] if scope in doc.get("resources", {}) else None
            found.append({"file": path, "symbol": symbol, "role": role, "principal": config["properties"]["principalId"],
                          "scope_type": scope_type, "condition": condition, "name": config["name"]})
    return found


def test_app_identity_holds_exactly_the_roles_it_needs():
    app = [a for a in role_assignments() if a["principal"] == "appPrincipalId"]
    assert sorted(a["role"] for a in app) == sorted(APP_ROLES), "the app's identity must hold exactly APP_ROLES"
    for a in app:
        assert a["condition"] is None, f"{a['symbol']}: the app's roles are unconditional"
        assert a["scope_type"] == APP_ROLES[a["role"]], f"{a['symbol']}: scoped to {a['scope_type']}"


def test_roles_are_granted_to_the_identity_the_app_runs_as():
    identity = module_symbol("identity")
    roles_call = module_call("roles")["params"]
    assert accessor_path(roles_call["appPrincipalId"]) == [identity, "outputs", "principalId"]
    app_call = module_call("functionapp")
    assert accessor_path(app_call["params"]["identityId"]) == [identity, "outputs", "id"]
    assert module_symbol("roles") in app_call.get("dependsOn", []), "the app must wait for its role assignments"
    site = only_resource(module_file("functionapp"), "Microsoft.Web/sites")
    assert site["identity"]["type"] == "UserAssigned"
    assert [k.strip("'") for k in site["identity"]["userAssignedIdentities"]] == ["${identityId}"]


def test_producer_send_role_is_optional_and_not_the_apps():
    senders = [a for a in role_assignments() if a["role"] == EVENT_HUBS_DATA_SENDER]
    assert len(senders) == 1
    sender = senders[0]
    assert sender["principal"] == "producerPrincipalId"
    assert sender["scope_type"] == "Microsoft.EventHub/namespaces/eventhubs"
    assert "producerPrincipalId" in json.dumps(sender["condition"]), "granted only when a producer is given"
    assert param_default(module_file("roles"), "producerPrincipalId") == ""
    assert module_call("roles")["params"]["producerPrincipalId"] == "producerPrincipalId"
    assert param_default(MAIN, "producerPrincipalId") == ""


def test_role_assignment_names_are_deterministic_guids():
    for a in role_assignments():
        assert a["name"]["function"]["type"] == "guid", f"{a['symbol']}: name it with guid(scope, principal, role)"
        args = json.dumps(a["name"])
        assert a["principal"] in args, f"{a['symbol']}: the name must depend on the principal"


# --------------------------------------------------------------------------------------
# 3. No secrets
# --------------------------------------------------------------------------------------
SECRET_PATTERNS = [
    (re.compile(r"AccountKey\s*=", re.I), "storage account key"),
    (re.compile(r"SharedAccessKey\s*=", re.I), "SAS key in a connection string"),
    (re.compile(r"SharedAccessSignature\s*=", re.I), "shared access signature"),
    (re.compile(r"[?&]sig=", re.I), "SAS token"),
    (re.compile(r"InstrumentationKey\s*=", re.I), "Application Insights key"),
    (re.compile(r"DefaultEndpointsProtocol\s*=", re.I), "storage connection string"),
    (re.compile(r"Endpoint\s*=\s*sb://", re.I), "Service Bus/Event Hubs connection string"),
    (re.compile(r"(?<![A-Za-z])list[A-Z]\w*\s*\("), "list*() function (returns keys/secrets)"),
    (re.compile(r"\.list[A-Z]\w*\s*\("), "list*() function (returns keys/secrets)"),
    (re.compile(r"\blistkeys\b", re.I), "listKeys"),
    (re.compile(r"\b(primary|secondary)(Key|ConnectionString|MasterKey)\b", re.I), "key property"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "private key"),
]
# A run of 40+ base64 characters with digits and both cases: an account or SAS key.
# (Resource types like Microsoft.Storage/storageAccounts/... and long identifiers have no digits.)
BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=])")


def _key_like(token: str) -> bool:
    return (sum(c.isdigit() for c in token) >= 2 and any(c.islower() for c in token)
            and any(c.isupper() for c in token))


def secret_findings(text: str) -> list[str]:
    findings = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for pattern, what in SECRET_PATTERNS:
            if pattern.search(line):
                findings.append(f"line {lineno}: {what}: {line.strip()[:120]}")
        if any(_key_like(m.group(0)) for m in BASE64_RUN.finditer(line)):
            findings.append(f"line {lineno}: base64 key-like string: {line.strip()[:120]}")
    return findings


def infra_text_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.is_file() and p.suffix in {".bicep", ".json", ".sh", ".bicepparam"})


@pytest.mark.parametrize("sample", [
    "value: listKeys(storage.id, '2023-05-01').keys[0].value",
    "value: storage.listKeys().keys[0].value",
    "x: eh.listConnectionStrings()",
    "'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${k}'",
    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc",
    "https://a.blob.core.windows.net/c/b?sv=2022-11-02&sig=abc%3D",
    "InstrumentationKey=00000000-0000-0000-0000-000000000000",
    "key: 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='",
    "output k string = sb.properties.primaryConnectionString",
    "SharedAccessKey: 'Xk3m9PqR2vT7wY1zA4bC6dE8fG0hJ5kL7mN9pQ2rS4t='",
])
def test_secret_detector_finds_secrets(sample):
    assert secret_findings(sample)


@pytest.mark.parametrize("sample", [
    "roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')",
    "AzureWebJobsStorage__credential: 'managedidentity'",
    "value: '${storageBlobEndpoint}${deploymentContainerName}'",
    "az functionapp keys list -g \"$RG\" -n \"$APP\" --query \"systemKeys.blobs_extension\" -o tsv",
    "\"$schema\": \"https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#\"",
    "resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [",
    "enableLogAccessUsingOnlyResourcePermissions: true",
])
def test_secret_detector_passes_clean_lines(sample):
    assert not secret_findings(sample)


def test_no_secret_in_templates_parameter_files_or_scripts():
    files = infra_text_files()
    assert MAIN in files and PARAMETER_FILES and (INFRA / "post-deploy.sh") in files
    findings = {str(p.relative_to(ROOT)): f for p in files if (f := secret_findings(p.read_text()))}
    assert not findings, f"secrets or key material in infra files: {json.dumps(findings, indent=1)}"


def test_secure_parameters_have_no_default_value():
    for path in BICEP_FILES:
        for name, param in parse(path).get("parameters", {}).items():
            if any(d["type"] == "secure" for d in param["decorators"]):
                assert param.get("default", "") == "", f"{path.name}: @secure() {name} has a default value"


SECRET_NAMED = re.compile(r"key|secret|password|token|webhook|connectionstring|sas", re.I)


def test_parameter_files_hold_no_credential_values():
    for path, values in parameter_files():
        for name, value in values.items():
            if SECRET_NAMED.search(name):
                assert value in ("", None, {}, []), f"{path.name}: {name} looks like a credential: pass it at deploy time"


# local.settings.example.json: only emulator connection strings, which are public.
AZURITE_BASE = f"AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY}"
EVENTHUBS_EMULATOR = re.compile(
    r"^Endpoint=sb://(localhost|127\.0\.0\.1)(:\d+)?/?;SharedAccessKeyName=RootManageSharedAccessKey;"
    r"SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;?$", re.I)


def local_settings_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    values = doc.get("Values", {})
    for name, value in {**values, **doc.get("ConnectionStrings", {})}.items():
        value = str(value)
        compact = value.replace(" ", "")
        if compact.lower() == "usedevelopmentstorage=true":
            continue
        if "AccountKey=" in compact:
            if AZURITE_BASE not in compact:
                problems.append(f"{name}: an account key that is not Azurite's well-known development key")
            continue
        if "SharedAccessKey=" in compact:
            if not EVENTHUBS_EMULATOR.match(compact):
                problems.append(f"{name}: a shared access key that is not the Event Hubs emulator's")
            continue
        if secret_findings(value) or (SECRET_NAMED.search(name) and value):
            problems.append(f"{name}: looks like a credential")
    return problems


@pytest.mark.parametrize("values, ok", [
    ({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, True),
    ({"AzureWebJobsStorage": f"DefaultEndpointsProtocol=http;{AZURITE_BASE};BlobEndpoint=http://127.0.0.1:10000/{AZURITE_ACCOUNT};"}, True),
    ({"EventHubConnection": "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"}, True),
    ({"FRAUD_ALERT_WEBHOOK_URL": "", "FRAUD_RULES": "{\"blocked_merchants\": []}"}, True),
    ({"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net"}, False),
    ({"EventHubConnection": "Endpoint=sb://bank.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=abc="}, False),
    ({"FRAUD_ALERT_WEBHOOK_URL": "https://bank.webhook.office.com/webhookb2/abc/IncomingWebhook/def"}, False),
    ({"FRAUD_MODEL_CONTAINER": "https://a.blob.core.windows.net/models?sv=2022-11-02&sig=abc"}, False),
])
def test_local_settings_checker(values, ok):
    assert (local_settings_problems({"Values": values}) == []) is ok


def test_local_settings_example_has_only_emulator_strings():
    if not LOCAL_SETTINGS_EXAMPLE.exists():
        pytest.skip("no local.settings.example.json (the checker itself is tested above)")
    problems = local_settings_problems(json.loads(LOCAL_SETTINGS_EXAMPLE.read_text()))
    assert not problems, problems


# --------------------------------------------------------------------------------------
# 4. Storage
# --------------------------------------------------------------------------------------
def test_storage_account_is_locked_down():
    account = only_resource(module_file("storage"), "Microsoft.Storage/storageAccounts")
    props = account["properties"]
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowBlobPublicAccess"] is False
    assert props["allowSharedKeyAccess"] is False
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["defaultToOAuthAuthentication"] is True
    blob = only_resource(module_file("storage"), "Microsoft.Storage/storageAccounts/blobServices")["properties"]
    assert blob["deleteRetentionPolicy"]["enabled"] is True
    assert blob["containerDeleteRetentionPolicy"]["enabled"] is True
    container = only_resource(module_file("storage"), "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container["properties"]["publicAccess"] == "None"


def storage_names(param: str) -> set[str]:
    return set(resolve_string_list(module_call("storage")["params"][param], MAIN))


def settings_defaults(suffix: str) -> set[str]:
    return {s.default for s in SETTINGS if s.kind == "plain" and s.name.endswith(suffix) and s.default}


def test_storage_has_every_container_table_and_queue():
    containers, tables, queues = storage_names("containers"), storage_names("tables"), storage_names("queues")
    assert containers >= REQUIRED_CONTAINERS | settings_defaults("_CONTAINER"), sorted(containers)
    assert tables >= REQUIRED_TABLES | settings_defaults("_TABLE"), sorted(tables)
    assert queues >= REQUIRED_QUEUES | settings_defaults("_QUEUE"), sorted(queues)
    # the Flex deployment package container is created too
    deployment = module_call("functionapp")["params"]["deploymentContainerName"]
    deployment = parse(MAIN)["variables"][deployment]["value"] if deployment in parse(MAIN)["variables"] else deployment
    assert deployment in containers


def test_event_grid_system_topic_on_the_storage_account():
    topic = only_resource(module_file("eventgrid"), "Microsoft.EventGrid/systemTopics")
    assert topic["properties"]["topicType"] == "Microsoft.Storage.StorageAccounts"
    assert accessor_path(module_call("eventgrid")["params"]["storageAccountId"]) == [module_symbol("storage"), "outputs", "id"]
    assert "eventGridSystemTopicName" in parse(MAIN)["outputs"]  # post-deploy.sh reads it
    assert "functionAppName" in parse(MAIN)["outputs"]


# --------------------------------------------------------------------------------------
# 5. Hosting: Flex Consumption
# --------------------------------------------------------------------------------------
def test_plan_is_flex_consumption():
    plan = only_resource(module_file("functionapp"), "Microsoft.Web/serverfarms")
    assert plan["sku"]["name"] == "FC1"
    assert plan["sku"]["tier"] == "FlexConsumption"
    assert plan["properties"]["reserved"] is True  # Linux
    site = only_resource(module_file("functionapp"), "Microsoft.Web/sites")
    assert "functionapp" in site["kind"] and "linux" in site["kind"]
    assert accessor_path(site["properties"]["serverFarmId"]) == ["plan", "id"]
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["siteConfig"]["minTlsVersion"] == "1.2"


def test_flex_function_app_config():
    fa = module_file("functionapp")
    config = only_resource(fa, "Microsoft.Web/sites")["properties"]["functionAppConfig"]
    runtime = config["runtime"]
    assert runtime["name"] == "python"
    assert runtime["version"] == "pythonVersion"
    for path in (fa, MAIN):
        assert set(allowed_values(path, "pythonVersion")) <= FLEX_PYTHON_VERSIONS
        assert param_default(path, "pythonVersion") == "3.11"
    for path, values in parameter_files():
        assert values.get("pythonVersion", "3.11") in FLEX_PYTHON_VERSIONS, path.name
    scale = config["scaleAndConcurrency"]
    assert scale["instanceMemoryMB"] == "instanceMemoryMB" and scale["maximumInstanceCount"] == "maximumInstanceCount"
    for name in ("instanceMemoryMB", "maximumInstanceCount"):
        assert name in parse(MAIN)["parameters"] and module_call("functionapp")["params"][name] == name
    assert param_default(MAIN, "instanceMemoryMB") == 2048
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}


def test_event_hubs_namespace_is_identity_only():
    eh = module_file("eventhubs")
    namespace = only_resource(eh, "Microsoft.EventHub/namespaces")
    assert namespace["properties"]["disableLocalAuth"] is True
    assert namespace["properties"]["minimumTlsVersion"] == "1.2"
    assert namespace["sku"]["name"] == "skuName"
    assert set(allowed_values(eh, "skuName")) <= {"Standard", "Premium"}  # Basic has no consumer groups
    hub = only_resource(eh, "Microsoft.EventHub/namespaces/eventhubs")
    assert hub["properties"]["partitionCount"] == "partitionCount"
    assert module_call("eventhubs")["params"]["partitionCount"] == "eventHubPartitionCount"
    assert only_resource(eh, "Microsoft.EventHub/namespaces/eventhubs/consumergroups")["name"] == "consumerGroupName"


def function_names() -> set[str]:
    names = set()
    for path in [ROOT / "function_app.py", *sorted((ROOT / "functions").glob("*.py"))]:
        if path.exists():
            names.update(re.findall(r"function_name\(\s*(?:name\s*=\s*)?[\"']([^\"']+)[\"']", path.read_text()))
    return names


def test_always_ready_groups_name_real_functions():
    known = function_names()
    assert "score_stream" in known
    for path, values in parameter_files():
        for entry in values.get("alwaysReady") or []:
            group = entry["name"]
            assert group in ("http", "blob", "durable") or (
                group.startswith("function:") and group.split(":", 1)[1] in known
            ), f"{path.name}: alwaysReady {group!r} is no function group or function of the app"
            assert entry["instanceCount"] >= 0


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_post_deploy_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(INFRA / "post-deploy.sh")], check=True)
