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
   each scoped to the one storage account it is for, and the producer's send role is optional;
3. no secret, key or key-bearing connection string in any template, parameter file or
   script (and ``local.settings.example.json``, if present, only has emulator strings);
4. storage: TLS 1.2, no public blob access, no shared keys, HTTPS only on every account; the
   host account (AzureWebJobsStorage) apart from the data account (FRAUD_DATA_STORAGE), which
   holds every container, table and queue the settings name; the profile accounts; the
   decision archive's versioning and immutability; the data account's lifecycle rules;
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
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
EVENT_HUBS_DATA_RECEIVER = "a638d3c7-ab3a-418d-83e6-5f17a39d4fde"
EVENT_HUBS_DATA_SENDER = "2b629674-e913-4c01-ae53-ef4638d8f975"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
KEY_VAULT_READER = "21090545-7ca7-4776-b22c-e363652d74d2"
KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-49ef-9c6f-c8b9396f4c25"

# What each principal may do, (role, scope): a storage scope is (<main.bicep module of the
# account>, "account") or (<module>, "container"|"table"|"queue", <name>); a Key Vault scope
# ("keyVault", "key"|"secret", <name>); anything else the resource type. Issue #16: every
# data-account role is scoped to one container, table or queue; the host account keeps the
# account-wide roles the Functions host documents.
APP_WRITE_CONTAINERS = ("labels", "monitoring", "retrain-requests", "decision-staging", "training-sample",
                        "dead-letter", "decision-archive")
APP_ROLES = sorted([
    (STORAGE_BLOB_DATA_OWNER, ("hostStorage", "account")),          # Functions host: leases, checkpoints, package
    (STORAGE_QUEUE_DATA_CONTRIBUTOR, ("hostStorage", "account")),   # the blob trigger's internal queues
    (STORAGE_TABLE_DATA_CONTRIBUTOR, ("hostStorage", "account")),   # the host's diagnostic events
    *[(STORAGE_BLOB_DATA_CONTRIBUTOR, ("dataStorage", "container", c)) for c in APP_WRITE_CONTAINERS],
    (STORAGE_BLOB_DATA_READER, ("dataStorage", "container", "models")),         # loads models, never writes them
    (STORAGE_BLOB_DATA_READER, ("dataStorage", "container", "training-data")),  # the retrain reads base data
    *[(STORAGE_TABLE_DATA_CONTRIBUTOR, ("dataStorage", "table", t))
      for t in ("profiles", "scores", "merchantrisk", "labels", "monitoraggregates")],
    (STORAGE_QUEUE_DATA_CONTRIBUTOR, ("dataStorage", "queue", "fraud-alerts")),
    (STORAGE_QUEUE_DATA_CONTRIBUTOR, ("dataStorage", "queue", "webjobs-blobtrigger-poison")),
    (STORAGE_TABLE_DATA_CONTRIBUTOR, ("profileStorage", "table", "profiles")),  # once per profile account (module loop)
    (EVENT_HUBS_DATA_RECEIVER, "Microsoft.EventHub/namespaces/eventhubs"),
    (MONITORING_METRICS_PUBLISHER, "Microsoft.Insights/components"),
    (KEY_VAULT_READER, ("keyVault", "key", "fraud-release")),          # verify releases: public key only
    (KEY_VAULT_SECRETS_USER, ("keyVault", "secret", "pseudonym-key")),
    (KEY_VAULT_SECRETS_USER, ("keyVault", "secret", "alert-webhook-url")),
], key=repr)
RELEASE_ROLES = sorted([
    (STORAGE_BLOB_DATA_CONTRIBUTOR, ("dataStorage", "container", "models")),  # publish candidates
    (KEY_VAULT_CRYPTO_USER, ("keyVault", "key", "fraud-release")),            # sign them
], key=repr)
APPROVER_ROLES = RELEASE_ROLES  # tools.models approve: sign the approval, move the pointer
PRODUCER_ROLES = [(EVENT_HUBS_DATA_SENDER, "Microsoft.EventHub/namespaces/eventhubs")]

# App settings the platform needs besides the app's own.
PLATFORM_SETTINGS = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
                     "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"}

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

# Storage the app and the retraining triggers use, besides what the settings name (issue #15).
REQUIRED_CONTAINERS = {"models", "dead-letter", "labels", "monitoring", "training-data", "retrain-requests",
                       "decision-archive", "decision-staging", "training-sample"}
REQUIRED_TABLES = {"profiles", "scores", "merchantrisk", "labels", "monitoraggregates"}
REQUIRED_QUEUES = {"fraud-alerts"}

# The identity form of a profile account's connection (it holds only the profiles table).
PROFILE_CONNECTION_PROPERTIES = {"tableServiceUri", "credential", "clientId"}
# Redundancies that have the Archive tier (the others stop at Cold).
ARCHIVE_TIER_SKUS = {"Standard_LRS", "Standard_GRS", "Standard_RAGRS"}

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


def module_calls(module_path: str) -> dict[str, dict[str, Any]]:
    """symbol -> module block of every main.bicep module that deploys modules/<module_path>.bicep."""
    return {name: m for name, m in parse(MAIN).get("modules", {}).items()
            if m["detail"]["path"] == f"modules/{module_path}.bicep"}


def module_call(module_path: str) -> dict[str, Any]:
    """The one module block of main.bicep that deploys modules/<module_path>.bicep."""
    calls = module_calls(module_path)
    assert len(calls) == 1, f"main.bicep: expected one module using modules/{module_path}.bicep"
    return body(next(iter(calls.values())))[0]


def module_symbol(module_path: str) -> str:
    names = list(module_calls(module_path))
    assert len(names) == 1
    return names[0]


def main_module(symbol: str) -> tuple[dict[str, Any], Any, Any]:
    """(body, condition, loop) of main.bicep's module <symbol>."""
    return body(parse(MAIN)["modules"][symbol])


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


class ModuleOutput(str):
    """What evaluate() gives for <module>.outputs.<name>: known only at deployment."""


FAKE_UNIQUE_STRING = "t0k3nt0k3nt0k"  # uniqueString() is 13 characters


def _interpolate(text: str, path: Path, values: dict[str, Any], scope: dict[str, Any]) -> str:
    """'${name}' and '${name.key}' replaced by their values; other expressions are left as they are."""
    def value_of(match: re.Match[str]) -> str:
        head, *keys = match.group(1).split(".")
        if head in parse(path).get("modules", {}):
            raise _ModuleReference(match.group(1))
        value = evaluate(head, path, values, scope)
        for key in keys:
            value = value[key]
        return str(value)
    try:
        return re.sub(r"\$\{([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\}", value_of, text)
    except _ModuleReference:
        return ModuleOutput(text)  # known only at deployment


class _ModuleReference(Exception):
    """An interpolation names a module's output."""


def evaluate(expr: Any, path: Path, values: dict[str, Any] | None = None, scope: dict[str, Any] | None = None) -> Any:
    """The value of a template expression, for the parameter values given (else the defaults).

    Covers what the storage, lifecycle and profile-account expressions use: literals and
    interpolation, parameters and variables, array loops (over arrays and range()), union,
    contains, join, string, take, toLower, replace, uniqueString (a fixed fake), conditionals,
    equality and property access; a module's output comes back as a ModuleOutput."""
    values, scope = values or {}, scope or {}
    doc = parse(path)
    if isinstance(expr, (bool, int, float)) or expr is None:
        return expr
    if isinstance(expr, str):
        if expr in scope:
            return scope[expr]
        if expr in values:
            return values[expr]
        if expr in doc.get("parameters", {}):
            return doc["parameters"][expr].get("default")
        if expr in doc.get("variables", {}):
            return evaluate(doc["variables"][expr]["value"], path, values)
        return _interpolate(expr, path, values, scope)
    if isinstance(expr, list):
        return [evaluate(item, path, values, scope) for item in expr]
    assert isinstance(expr, dict)
    if "loop_type" in expr:
        loop = expr["loop_type"]
        detail = loop["detail"]
        if loop["type"] == "range":
            start = evaluate(detail["start_index"], path, values, scope)
            count = evaluate(detail["count"], path, values, scope)
            bindings = [{detail["index_name"]: i} for i in range(start, start + count)]
        else:
            assert loop["type"] in ("array", "array_index"), loop
            items = evaluate(detail["array_name"], path, values, scope)
            bindings = [{detail["item_name"]: item, **({detail["index_name"]: i} if detail.get("index_name") else {})}
                        for i, item in enumerate(items)]
        return [evaluate(expr["config"], path, values, {**scope, **b}) for b in bindings]
    if "function" in expr:
        kind, args = expr["function"]["type"], expr["function"]["parameters"]
        arg = lambda key: evaluate(args[key], path, values, scope)  # noqa: E731
        if kind == "union":
            merged: dict[str, Any] = {}
            for key in args:
                merged.update(arg(key))
            return merged
        if kind == "concat":
            return [item for key in args for item in arg(key)]
        if kind == "contains":
            return arg("item_to_find") in arg("container")
        if kind == "join":
            return arg("delimiter").join(arg("input_array"))
        if kind == "string":
            return str(arg("value_to_convert"))
        if kind == "take":
            return arg("original_value")[:arg("number_to_take")]
        if kind == "to_lower":
            return arg("string_to_change").lower()
        if kind == "replace":
            return arg("original_string").replace(arg("old_string"), arg("new_string"))
        if kind == "unique_string":
            return FAKE_UNIQUE_STRING
        if kind == "empty":
            return not arg("item_to_test")
        raise AssertionError(f"evaluate: function {kind} not covered")
    if "operator" in expr:
        kind, operands = expr["operator"]["type"], expr["operator"]["operands"]
        if kind == "conditional":
            chosen = "true_value" if evaluate(operands["condition"], path, values, scope) else "false_value"
            return evaluate(operands[chosen], path, values, scope)
        if kind == "not":
            return not evaluate(operands["bool_value"], path, values, scope)
        if kind == "equals":
            return evaluate(operands["operand_1"], path, values, scope) == evaluate(operands["operand_2"], path, values, scope)
        if kind == "not_equals":
            return evaluate(operands["operand_1"], path, values, scope) != evaluate(operands["operand_2"], path, values, scope)
        if kind == "property_accessor":
            chain = accessor_path(expr)
            if chain and chain[0] in doc.get("modules", {}):
                return ModuleOutput(".".join(chain))
            base = evaluate(operands["operand_1"], path, values, scope)
            if isinstance(base, ModuleOutput):  # a property of a module's output (through a variable)
                return ModuleOutput(f"{base}.{operands['operand_2']}")
            return base[operands["operand_2"]]
        raise AssertionError(f"evaluate: operator {kind} not covered")
    return {key: evaluate(value, path, values, scope) for key, value in expr.items()}


def main_values(parameter_file: Path | None = None) -> dict[str, Any]:
    """main.bicep's parameter values: the defaults, overridden by a parameter file."""
    # a required parameter without a file gets a stand-in value (e.g. environmentName)
    values = {name: p.get("default", name.lower()[:8]) for name, p in parse(MAIN)["parameters"].items()}
    if parameter_file is not None:
        values.update(dict(parameter_files())[parameter_file])
    return values


def setting_default(name: str) -> str:
    return next(s.default for s in SETTINGS if s.name == name)


def settings_defaults(suffix: str) -> set[str]:
    return {s.default for s in SETTINGS if s.kind == "plain" and s.name.endswith(suffix) and s.default}


def expected_app_settings() -> set[str]:
    names = set()
    for s in SETTINGS:
        if s.kind == "connection":
            names.update(f"{s.name}__{prop}" for prop in s.identity_properties)
        else:
            names.add(s.name)
    return names


def _app_settings_parts() -> tuple[str, list[str]]:
    """siteConfig.appSettings of functionapp.bicep is concat(<settings object as name/value
    pairs>, <profile connection loops>...): the first variable and the others."""
    fa = module_file("functionapp")
    site = only_resource(fa, "Microsoft.Web/sites")
    expr = site["properties"]["siteConfig"]["appSettings"]
    assert expr.get("function", {}).get("type") == "concat", "siteConfig.appSettings must be concat(<variables>)"
    parts = list(expr["function"]["parameters"].values())
    assert all(isinstance(p, str) and p in parse(fa)["variables"] for p in parts), parts
    return parts[0], parts[1:]


def deployed_app_settings() -> dict[str, Any]:
    """name -> value expression of every app setting the function app gets under a fixed name."""
    fa = module_file("functionapp")
    named, _ = _app_settings_parts()
    loop = parse(fa)["variables"][named]["value"]
    # [for setting in items(X): {name: setting.key, value: setting.value}]
    assert loop.get("loop_type", {}).get("type") == "object", f"{named} must be a loop over items(<object>)"
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


def profile_connection_settings() -> dict[str, Any]:
    """property -> value expression of the settings functionapp.bicep adds per profile account,
    named '<connection.setting>__<property>' from its profileConnections parameter."""
    fa = module_file("functionapp")
    _, loops = _app_settings_parts()
    found = {}
    for name in loops:
        loop = parse(fa)["variables"][name]["value"]
        detail = loop["loop_type"]["detail"]
        assert loop["loop_type"]["type"] == "array" and detail["array_name"] == "profileConnections", name
        item = detail["item_name"]
        match = re.fullmatch(r"\$\{%s\.setting\}__(\w+)" % re.escape(item), loop["config"]["name"])
        assert match, f"{name}: settings must be named '${{{item}.setting}}__<property>'"
        found[match.group(1)] = loop["config"]["value"]
    return found


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
    """By main.bicep, or (the network shapes of an account or a vault) by the module that owns it."""
    used = {m["detail"]["path"] for m in parse(MAIN)["modules"].values()}
    for path in MODULES.glob("*.bicep"):
        used |= {f"modules/{m['detail']['path']}" for m in parse(path).get("modules", {}).values()}
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
            # the model registry's writes (retraining) are the release identity's; all else the app's
            output = "releaseClientId" if s.name == "FRAUD_MODEL_STORAGE" else "clientId"
            assert accessor_path(deployed[f"{s.name}__clientId"]) == [identity, "outputs", output], (
                f"{s.name}__clientId must be the {'release' if output == 'releaseClientId' else 'app'} identity"
            )
        for prop in s.identity_properties:
            if prop.endswith("ServiceUri") or prop == "fullyQualifiedNamespace":
                value = deployed[f"{s.name}__{prop}"]
                assert not is_literal(value, MAIN), f"{s.name}__{prop} should come from the deployed resource"


# A Key Vault reference to a secret keyvault.bicep makes: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.<x>SecretUri})'.
KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=\$\{keyVault\.outputs\.(\w+SecretUri)\}\)$")


def test_plain_setting_values_are_registry_defaults_or_references():
    """A literal in the template must be the code's default (change values via appSettingOverrides),
    or a Key Vault reference to a secret the template makes."""
    deployed = deployed_app_settings()
    outputs = parse(module_file("keyvault"))["outputs"]
    for s in (s for s in SETTINGS if s.kind == "plain"):
        value = deployed[s.name]
        if isinstance(value, str) and (match := KEY_VAULT_REFERENCE.match(value)):
            assert match.group(1) in outputs, f"{s.name}: keyvault.bicep has no output {match.group(1)}"
            continue
        if is_literal(value, MAIN):
            assert value == s.default, f"{s.name}: template has {value!r}, shared/config.py default is {s.default!r}"
        else:
            assert value is not None


def test_storage_connections_point_at_their_own_accounts():
    """AzureWebJobsStorage is the host account; FRAUD_DATA_STORAGE the data account."""
    deployed = deployed_app_settings()
    for connection, account in (("AzureWebJobsStorage", "hostStorage"), ("FRAUD_DATA_STORAGE", "dataStorage")):
        for prop, output in (("blobServiceUri", "blobEndpoint"), ("queueServiceUri", "queueEndpoint"),
                             ("tableServiceUri", "tableEndpoint")):
            assert accessor_path(deployed[f"{connection}__{prop}"]) == [account, "outputs", output], (
                f"{connection}__{prop} must be the {account} account's endpoint")


MODULE_DERIVED_SETTINGS = {"FRAUD_ARCHIVE_CONTAINER", "EVENTHUB_NAME", "EVENTHUB_CONSUMER_GROUP",
                           "FRAUD_RELEASE_KEY", "FRAUD_PSEUDONYM_KEY"}


def test_setting_values_evaluate_to_the_registry_defaults():
    """With main.bicep's defaults every plain setting the template can compute (literals,
    variables, parameters, string(), join()) is the code's default; what a module outputs is
    checked where it is made (FRAUD_ARCHIVE_CONTAINER below, the Event Hub names further on)."""
    deployed = deployed_app_settings()
    values = main_values()
    computed = 0
    for s in (s for s in SETTINGS if s.kind == "plain"):
        value = evaluate(deployed[s.name], MAIN, values)
        if isinstance(value, ModuleOutput):
            continue
        computed += 1
        assert value == s.default, f"{s.name}: the template deploys {value!r}, shared/config.py default is {s.default!r}"
    # what only a module knows: the archive container, the hub's names, the Key Vault's key and secret
    assert computed == len([s for s in SETTINGS if s.kind == "plain"]) - len(MODULE_DERIVED_SETTINGS)
    archive = main_module("decisionArchive")[0]["params"]
    assert accessor_path(deployed["FRAUD_ARCHIVE_CONTAINER"]) == ["decisionArchive", "outputs", "containerName"]
    assert evaluate(archive["containerName"], MAIN, values) == setting_default("FRAUD_ARCHIVE_CONTAINER")
    assert parse(module_file("decisionarchive"))["outputs"]["containerName"]["value"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "archiveContainer", "operand_2": "name"}}}


def test_issue_15_settings_are_deployed():
    deployed = deployed_app_settings()
    for name in ("FRAUD_AGGREGATE_TABLE", "FRAUD_MONITOR_FLUSH_SECONDS", "FRAUD_ARCHIVE_CONTAINER",
                 "FRAUD_ARCHIVE_STAGING_CONTAINER", "FRAUD_ARCHIVE_SCHEDULE", "FRAUD_ARCHIVE_GRACE_MINUTES",
                 "FRAUD_TRAINING_SAMPLE_CONTAINER", "FRAUD_TRAINING_SAMPLE_RATE", "FRAUD_AUDIT_RETENTION_DAYS",
                 "FRAUD_DEAD_LETTER_RETENTION_DAYS", "FRAUD_LABEL_RETENTION_DAYS", "FRAUD_PROFILE_INACTIVE_DAYS",
                 "FRAUD_RETENTION_SCHEDULE", "FRAUD_PROFILE_ACCOUNTS", "FRAUD_DATA_STORAGE__blobServiceUri",
                 "FRAUD_DATA_STORAGE__queueServiceUri", "FRAUD_DATA_STORAGE__tableServiceUri",
                 "FRAUD_DATA_STORAGE__credential", "FRAUD_DATA_STORAGE__clientId"):
        assert name in deployed, name


def test_dead_letter_retention_setting_and_lifecycle_rule_are_one_parameter():
    deployed = deployed_app_settings()
    assert deployed["FRAUD_DEAD_LETTER_RETENTION_DAYS"] == {
        "function": {"type": "string", "parameters": {"value_to_convert": "deadLetterRetentionDays"}}}
    for path, _ in parameter_files():
        values = main_values(path)
        rule = lifecycle_by_container(values)["dead-letter"]
        setting = evaluate(deployed["FRAUD_DEAD_LETTER_RETENTION_DAYS"], MAIN, values)
        assert rule["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == int(setting), path.name


def test_profile_accounts_get_identity_based_table_connections():
    settings = profile_connection_settings()
    assert set(settings) == PROFILE_CONNECTION_PROPERTIES
    assert settings["credential"] == "managedidentity"
    assert settings["clientId"] == "identityClientId"
    assert accessor_path(module_call("functionapp")["params"]["identityClientId"]) == [module_symbol("identity"), "outputs", "clientId"]
    assert accessor_path(settings["tableServiceUri"])[-1] == "tableServiceUri"
    assert module_call("functionapp")["params"]["profileConnections"] == "profileConnections"
    assert param_default(module_file("functionapp"), "profileConnections") == []


@pytest.mark.parametrize("path", PARAMETER_FILES, ids=lambda p: p.name)
def test_profile_account_settings_follow_the_count_in_the_parameter_file(path):
    values = main_values(path)
    count = values["profileAccountCount"]
    connections = evaluate("profileConnections", MAIN, values)
    accounts = evaluate("profileAccounts", MAIN, values)
    names = [f"FRAUD_PROFILE_STORAGE_{i}" for i in range(1, count + 1)]
    assert [c["setting"] for c in connections] == names
    for connection, account in zip(connections, accounts):
        assert connection["tableServiceUri"].startswith(f"https://{account['name']}.table."), connection
    listed = evaluate(deployed_app_settings()["FRAUD_PROFILE_ACCOUNTS"], MAIN, values)
    assert listed == ",".join(names)  # empty when the count is 0
    for name in names:  # what the code reads for each listed name
        assert {f"{name}__{p}" for p in PROFILE_CONNECTION_PROPERTIES} == {
            f"{c['setting']}__{p}" for c in connections if c["setting"] == name for p in profile_connection_settings()}


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


def module_of(expr: Any) -> str | None:
    """The module symbol an output reference starts from: `m.outputs.x`, `m[i].outputs.x`."""
    while isinstance(expr, dict) and "operator" in expr:
        expr = expr["operator"]["operands"]["operand_1"]
    return expr if isinstance(expr, str) and expr in parse(MAIN).get("modules", {}) else None


def storage_scope(path: Path, scope: str) -> str | None:
    """The main.bicep module that deploys the storage account a role is scoped to, for an
    `existing` account named by a parameter of the roles module; None for anything else."""
    res = parse(path)["resources"][scope]
    if res["type"] != "Microsoft.Storage/storageAccounts":
        return None
    assert res["existing"], f"{path.name}:{scope}: roles are granted on accounts storage.bicep creates"
    name_param = body(res)[0]["name"]
    assert name_param in parse(path)["parameters"], f"{path.name}:{scope}: name the account by a parameter"
    passed = module_param(path, name_param)
    account = module_of(passed)
    assert account is not None and parse(MAIN)["modules"][account]["detail"]["path"] == "modules/storage.bicep", (
        f"{path.name}: {name_param} must be the name output of a storage.bicep module")
    return account


def module_param(path: Path, name: str) -> Any:
    """What main.bicep passes to parameter <name> of the module <path> (deployed once; a loop counts once)."""
    calls = module_calls(path.stem)
    assert len(calls) == 1, f"main.bicep must deploy modules/{path.name} once (a loop counts once)"
    return body(next(iter(calls.values())))[0]["params"][name]


def principal_name(path: Path, principal: str) -> str:
    """app | release | approver | producer: who a module's principal parameter is, from main.bicep."""
    passed = module_param(path, principal)
    chain = accessor_path(passed)
    identity = module_symbol("identity")
    known = {(identity, "outputs", "principalId"): "app", (identity, "outputs", "releasePrincipalId"): "release"}
    if chain is not None and tuple(chain) in known:
        return known[tuple(chain)]
    if passed == "releaseApproverPrincipalId":
        return "approver"
    if passed == "producerPrincipalId":
        return "producer"
    raise AssertionError(f"{path.name}: {principal} is {passed!r}: not a known principal")


CHILD_KINDS = {"Microsoft.Storage/storageAccounts/blobServices/containers": "container",
               "Microsoft.Storage/storageAccounts/tableServices/tables": "table",
               "Microsoft.Storage/storageAccounts/queueServices/queues": "queue",
               "Microsoft.KeyVault/vaults/keys": "key",
               "Microsoft.KeyVault/vaults/secrets": "secret"}


def _scope_symbol(scope: Any) -> tuple[str, Any]:
    """`x` -> ("x", None); `x[i]` -> ("x", "i")."""
    if isinstance(scope, str):
        return scope, None
    operator = scope["operator"]
    assert operator["type"] == "index_accessor", scope
    return operator["operands"]["operand_1"], operator["operands"]["operand_2"]


def _module_values(path: Path) -> dict[str, Any]:
    """The module's parameter values that main.bicep passes as literals or main variables."""
    values = {}
    for name in parse(path).get("parameters", {}):
        try:
            passed = module_param(path, name)
        except KeyError:
            continue
        if module_of(passed) is not None:
            continue  # a module's output (e.g. profileStorage[i].outputs.name): known at deployment
        value = evaluate(passed, MAIN, main_values())
        if not isinstance(value, ModuleOutput):
            values[name] = value
    return values


def _scopes(path: Path, scope: Any, loop: Any) -> list[Any]:
    """Every scope a role assignment (possibly a loop) covers, in the form of APP_ROLES."""
    doc = parse(path)
    symbol, index = _scope_symbol(scope)
    res = doc["resources"][symbol]
    config, _, res_loop = body(res)
    kind = CHILD_KINDS.get(res["type"])
    if res["type"] == "Microsoft.Storage/storageAccounts":
        assert index is None and loop is None
        return [(storage_scope(path, symbol), "account")]
    if kind in ("container", "table", "queue"):
        service = doc["resources"][config["parent"]]
        account = storage_scope(path, body(service)[0]["parent"])
        if res_loop is None:
            assert index is None and loop is None
            return [(account, kind, evaluate(config["name"], path, _module_values(path)))]
        # [for (x, i) in A: {scope: refs[i]}] over refs = [for x in A: {name: x}]: the same array
        assert index is not None and loop is not None and loop["detail"]["index_name"] == index
        array = res_loop["detail"]["array_name"]
        assert loop["detail"]["array_name"] == array, f"{path.name}: role loop and scope loop differ"
        assert config["name"] == res_loop["detail"]["item_name"], f"{path.name}:{symbol}: name it by the loop item"
        return [(account, kind, name) for name in _module_values(path)[array]]
    if kind in ("key", "secret"):
        assert index is None and loop is None
        vault_and_name = evaluate(config["name"], path, {"name": "VAULT"})
        vault, _, name = vault_and_name.partition("/")
        assert vault == "VAULT", vault_and_name
        return [("keyVault", kind, name)]
    assert index is None and loop is None
    return [res["type"]]


def role_assignments() -> list[dict[str, Any]]:
    """Every role assignment of every template, one per scope a loop covers: role GUID, who
    (app, release, approver, producer), scope, condition, name."""
    found = []
    for path in BICEP_FILES:
        doc = parse(path)
        variables = doc.get("variables", {})
        for symbol, res in resources(path, "Microsoft.Authorization/roleAssignments").items():
            config, condition, loop = body(res)
            role_id = config["properties"]["roleDefinitionId"]["function"]
            assert role_id["type"] in ("subscription_resource_id", "resource_id")
            assert role_id["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
            role = role_id["parameters"]["resource_name_1"]
            role = variables[role]["value"] if role in variables else role
            assert GUID.match(role), f"{path.name}:{symbol}: role {role!r} is not a role definition GUID"
            principal = config["properties"]["principalId"]
            for scope in _scopes(path, config["scope"], loop):
                found.append({"file": path, "symbol": symbol, "role": role, "principal": principal,
                              "who": principal_name(path, principal), "scope": scope, "condition": condition,
                              "name": config["name"], "loop": loop})
    return found


def roles_of(who: str) -> list[tuple[str, Any]]:
    return sorted(((a["role"], a["scope"]) for a in role_assignments() if a["who"] == who), key=repr)


def test_app_identity_holds_exactly_the_roles_it_needs():
    """Host roles on the host account; on the data account one role per container, table and
    queue (Reader on the model registry); the table role on each profile account's table."""
    assert roles_of("app") == APP_ROLES
    for a in role_assignments():
        if a["who"] == "app" and a["scope"] != ("keyVault", "secret", "alert-webhook-url") and \
                a["scope"] != ("keyVault", "secret", "pseudonym-key"):
            assert a["condition"] is None, f"{a['symbol']}: the app's roles are unconditional"


def test_roles_modules_get_the_app_identity_and_the_accounts():
    identity = module_symbol("identity")
    roles_call = module_call("roles")["params"]
    assert accessor_path(roles_call["hostStorageAccountName"]) == ["hostStorage", "outputs", "name"]
    assert accessor_path(roles_call["dataStorageAccountName"]) == ["dataStorage", "outputs", "name"]
    profile_roles, _, loop = main_module("profileRoles")
    assert parse(MAIN)["modules"]["profileRoles"]["detail"]["path"] == "modules/profileroles.bicep"
    assert accessor_path(profile_roles["params"]["appPrincipalId"]) == [identity, "outputs", "principalId"]
    # one role module per profile account, over the same list the accounts are made from
    assert loop["type"] == "array_index" and loop["detail"]["array_name"] == "profileAccounts"
    assert main_module("profileStorage")[2]["detail"]["array_name"] == "profileAccounts"
    index = loop["detail"]["index_name"]
    # profileStorage[i].outputs.name: the role for account i lands on account i
    assert profile_roles["params"]["storageAccountName"] == {"operator": {"type": "property_accessor", "operands": {
        "operand_1": {"operator": {"type": "index_accessor", "operands": {"operand_1": "profileStorage", "operand_2": index}}},
        "operand_2": {"operator": {"type": "property_accessor", "operands": {"operand_1": "outputs", "operand_2": "name"}}}}}}


def test_roles_are_granted_to_the_identity_the_app_runs_as():
    identity = module_symbol("identity")
    roles_call = module_call("roles")["params"]
    assert accessor_path(roles_call["appPrincipalId"]) == [identity, "outputs", "principalId"]
    assert accessor_path(roles_call["releasePrincipalId"]) == [identity, "outputs", "releasePrincipalId"]
    app_call = module_call("functionapp")
    assert accessor_path(app_call["params"]["identityId"]) == [identity, "outputs", "id"]
    assert accessor_path(app_call["params"]["releaseIdentityId"]) == [identity, "outputs", "releaseId"]
    for roles in (module_symbol("roles"), "profileRoles"):
        assert roles in app_call.get("dependsOn", []), "the app must wait for its role assignments"
    site = only_resource(module_file("functionapp"), "Microsoft.Web/sites")
    assert site["identity"]["type"] == "UserAssigned"
    assert [k.strip("'") for k in site["identity"]["userAssignedIdentities"]] == ["${identityId}", "${releaseIdentityId}"]


def test_producer_send_role_is_optional_and_not_the_apps():
    senders = [a for a in role_assignments() if a["role"] == EVENT_HUBS_DATA_SENDER]
    assert len(senders) == 1
    sender = senders[0]
    assert sender["who"] == "producer" and roles_of("producer") == PRODUCER_ROLES
    assert "producerPrincipalId" in json.dumps(sender["condition"]), "granted only when a producer is given"
    assert param_default(module_file("roles"), "producerPrincipalId") == ""
    assert module_call("roles")["params"]["producerPrincipalId"] == "producerPrincipalId"
    assert param_default(MAIN, "producerPrincipalId") == ""


def test_role_assignment_names_are_deterministic_guids():
    for a in role_assignments():
        assert a["name"]["function"]["type"] == "guid", f"{a['symbol']}: name it with guid(scope, principal, role)"
        args = json.dumps(a["name"])
        assert a["principal"] in args, f"{a['symbol']}: the name must depend on the principal"
        if a["loop"] is not None:  # one name per item: the name must depend on the loop's scope
            assert a["loop"]["detail"]["index_name"] in args, f"{a['symbol']}: the name must depend on the item"


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
                assert param.get("default") in ("", None), f"{path.name}: @secure() {name} has a default value"


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


LOCAL_KEY_FILE = re.compile(r"(file:)?data/keys/[a-z0-9-]+\.(pem|key)")


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
        if LOCAL_KEY_FILE.fullmatch(value):
            continue  # the path of a development key file made by make run, not a key
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
    ({"FRAUD_RELEASE_KEY": "data/keys/release-signing.pem", "FRAUD_PSEUDONYM_KEY": "file:data/keys/pseudonym.key"}, True),
    ({"FRAUD_PSEUDONYM_KEY": "c2VjcmV0LWtleS1tYXRlcmlhbA=="}, False),
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
STORAGE_MODULES = ("hostStorage", "dataStorage", "profileStorage")


ACCOUNT_SHAPES = ("storageaccount", "storageaccount-public")


@pytest.mark.parametrize("shape", ACCOUNT_SHAPES)
def test_storage_account_is_locked_down(shape):
    account = only_resource(module_file(shape), "Microsoft.Storage/storageAccounts")
    props = account["properties"]
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowBlobPublicAccess"] is False
    assert props["allowSharedKeyAccess"] is False
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["defaultToOAuthAuthentication"] is True
    assert props["isLocalUserEnabled"] is False and props["isSftpEnabled"] is False
    blob = only_resource(module_file("storage"), "Microsoft.Storage/storageAccounts/blobServices")["properties"]
    assert blob["deleteRetentionPolicy"]["enabled"] is True
    assert blob["containerDeleteRetentionPolicy"]["enabled"] is True
    assert blob["isVersioningEnabled"] == "enableVersioning"
    container = only_resource(module_file("storage"), "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container["properties"]["publicAccess"] == "None"


def test_every_account_is_made_by_the_hardened_storage_module():
    """The host, data and profile accounts all come from storage.bicep, through one of its two
    network shapes (so all get the settings above); no other template creates a storage account."""
    shapes = {module_file(shape) for shape in ACCOUNT_SHAPES}
    for path in BICEP_FILES:
        created = resources(path, "Microsoft.Storage/storageAccounts")
        assert bool(created) == (path in shapes), f"{path.name} creates a storage account"
        uses = {m["detail"]["path"] for m in parse(path).get("modules", {}).values()}
        assert bool(uses & {f"{s}.bicep" for s in ACCOUNT_SHAPES}) == (path == module_file("storage")), path.name
    assert set(module_calls("storage")) == set(STORAGE_MODULES)


def storage_param(module: str, param: str, values: dict[str, Any] | None = None) -> Any:
    return evaluate(main_module(module)[0]["params"][param], MAIN, values or main_values())


def storage_names(module: str, param: str) -> set[str]:
    return set(storage_param(module, param))


def data_containers() -> set[str]:
    """The data account's containers: its own list and the decision archive's."""
    archive = main_module("decisionArchive")[0]["params"]
    assert accessor_path(archive["storageAccountName"]) == ["dataStorage", "outputs", "name"]
    return storage_names("dataStorage", "containers") | {evaluate(archive["containerName"], MAIN, main_values())}


def test_data_account_has_every_container_table_and_queue():
    containers, tables = data_containers(), storage_names("dataStorage", "tables")
    queues = storage_names("dataStorage", "queues")
    assert containers >= REQUIRED_CONTAINERS | settings_defaults("_CONTAINER"), sorted(containers)
    assert tables >= REQUIRED_TABLES | settings_defaults("_TABLE"), sorted(tables)
    assert queues >= REQUIRED_QUEUES | settings_defaults("_QUEUE"), sorted(queues)


def test_host_account_keeps_only_what_the_host_needs():
    """The Flex deployment package and nothing of the app's: the host makes its own lease and
    checkpoint containers."""
    deployment = module_call("functionapp")["params"]["deploymentContainerName"]
    assert storage_names("hostStorage", "containers") == {evaluate(deployment, MAIN)}
    assert storage_names("hostStorage", "tables") == set()
    assert storage_names("hostStorage", "queues") == set()
    assert storage_param("hostStorage", "lifecycleRules") == []
    assert accessor_path(module_call("functionapp")["params"]["storageBlobEndpoint"]) == ["hostStorage", "outputs", "blobEndpoint"]
    app_data = data_containers() | storage_names("dataStorage", "tables") | storage_names("dataStorage", "queues")
    assert not app_data & storage_names("hostStorage", "containers")


@pytest.mark.parametrize("path", PARAMETER_FILES, ids=lambda p: p.name)
def test_accounts_have_distinct_valid_names(path):
    values = main_values(path)
    values["profileAccountCount"] = parse(MAIN)["parameters"]["profileAccountCount"]["decorators"][-1]["argument"]
    assert values["profileAccountCount"] == 16  # the @maxValue: every possible profile account
    names = [storage_param("hostStorage", "name", values), storage_param("dataStorage", "name", values)]
    names += [a["name"] for a in evaluate("profileAccounts", MAIN, values)]
    assert len(set(names)) == len(names), names
    for name in names:
        assert re.fullmatch(r"[a-z0-9]{3,24}", name), name
        assert FAKE_UNIQUE_STRING in name, f"{name}: the unique token must survive the 24-character cut"


def test_profile_accounts_loop_over_the_count():
    config, condition, loop = main_module("profileStorage")
    assert condition is None and loop["type"] == "array" and loop["detail"]["array_name"] == "profileAccounts"
    accounts = parse(MAIN)["variables"]["profileAccounts"]["value"]["loop_type"]
    assert accounts == {"type": "range", "detail": {"item_name": None, "index_name": accounts["detail"]["index_name"],
                                                    "start_index": 1, "count": "profileAccountCount"}}
    assert param_default(MAIN, "profileAccountCount") == 0
    values = dict(main_values(), profileAccountCount=2)
    assert storage_param("profileStorage", "tables", {**values, "account": {"name": "x"}}) == [setting_default("FRAUD_PROFILE_TABLE")]
    assert config["params"]["containers"] == [] and config["params"]["queues"] == []
    assert config["params"]["name"] == {"operator": {"type": "property_accessor", "operands": {
        "operand_1": loop["detail"]["item_name"], "operand_2": "name"}}}


def test_parameter_files_size_the_profile_accounts():
    counts = {path.name: values.get("profileAccountCount", 0) for path, values in parameter_files()}
    assert counts["main.dev.parameters.json"] == 0
    # docs/CAPACITY.md: 30,100 profile entities/s at 10,000 tx/s, 14,000 per account at 70 % -> 3
    assert counts["main.prod.parameters.json"] == 3


def test_decision_archive_is_versioned_and_immutable():
    assert storage_param("dataStorage", "enableVersioning") is True
    assert storage_param("hostStorage", "enableVersioning") is False
    archive = module_file("decisionarchive")
    container = only_resource(archive, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container["properties"]["immutableStorageWithVersioning"] == {"enabled": True}
    assert container["properties"]["publicAccess"] == "None"
    policy = only_resource(archive, "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies")
    assert policy["name"] == "default" and policy["parent"] == "archiveContainer"
    assert policy["properties"]["immutabilityPeriodSinceCreationInDays"] == "retentionDays"
    assert policy["properties"]["allowProtectedAppendWrites"] is False
    assert main_module("decisionArchive")[0]["params"]["retentionDays"] == "decisionArchiveRetentionDays"
    days = {path.name: main_values(path)["decisionArchiveRetentionDays"] for path, _ in parameter_files()}
    assert days["main.prod.parameters.json"] == 2555  # 7 years
    assert days["main.dev.parameters.json"] < days["main.prod.parameters.json"]
    # ARM only ever deploys the policy unlocked; locking is a separate, deliberate step
    assert "Locked" not in archive.read_text().replace("locked", "")


def lifecycle_by_container(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """container -> the merged actions of the data account's lifecycle rules that match it."""
    rules = storage_param("dataStorage", "lifecycleRules", values)
    found: dict[str, dict[str, Any]] = {}
    for rule in rules:
        assert rule["enabled"] is True and rule["type"] == "Lifecycle", rule["name"]
        prefixes = rule["definition"]["filters"]["prefixMatch"]
        assert len(prefixes) <= 10, f"{rule['name']}: a lifecycle filter takes at most 10 prefixes"
        for prefix in prefixes:
            container, _, rest = prefix.partition("/")
            assert rest == "" and prefix.endswith("/"), f"{rule['name']}: match whole containers ('<container>/')"
            for kind, action in rule["definition"]["actions"].items():
                merged = found.setdefault(container, {}).setdefault(kind, {})
                assert not set(merged) & set(action), f"{container}: two rules set {sorted(action)}"
                merged.update(action)
    return found


@pytest.mark.parametrize("path", PARAMETER_FILES, ids=lambda p: p.name)
def test_lifecycle_rules_tier_and_expire_each_container(path):
    values = main_values(path)
    rules = lifecycle_by_container(values)
    assert set(rules) <= data_containers(), "lifecycle rules name only the data account's containers"
    archive = rules["decision-archive"]
    assert set(archive) == {"baseBlob"}, "nothing in the archive is deleted by lifecycle (nor could it be)"
    assert archive["baseBlob"]["tierToCool"] == {"daysAfterModificationGreaterThan": 30}
    last_tier = "tierToArchive" if values["dataStorageSku"] in ARCHIVE_TIER_SKUS else "tierToCold"
    assert set(archive["baseBlob"]) == {"tierToCool", last_tier}, values["dataStorageSku"]
    assert archive["baseBlob"][last_tier] == {"daysAfterModificationGreaterThan": 180}
    for container, days in (("decision-staging", 14), ("training-sample", 45), ("dead-letter", 30)):
        assert rules[container]["baseBlob"] == {"delete": {"daysAfterModificationGreaterThan": days}}, container
        assert rules[container]["version"]["delete"]["daysAfterCreationGreaterThan"] <= 1, container
    lookback = int(setting_default("FRAUD_RETRAIN_LOOKBACK_DAYS"))
    assert rules["training-sample"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] > lookback
    # old versions go everywhere but in the archive
    version_days = values["blobVersionRetentionDays"]
    assert version_days == (90 if "prod" in path.name else version_days)
    for container in data_containers() - {"decision-archive"}:
        assert "delete" in rules[container]["version"], container
    for container in ("models", "labels", "monitoring", "training-data", "retrain-requests"):
        assert rules[container] == {"version": {"delete": {"daysAfterCreationGreaterThan": version_days}}}, container


def test_archive_tier_only_where_the_redundancy_has_it():
    """Archive exists on LRS, GRS and RA-GRS only: a zone-redundant data account gets Cold."""
    for sku in allowed_values(MAIN, "dataStorageSku"):
        archive = lifecycle_by_container(dict(main_values(), dataStorageSku=sku))["decision-archive"]["baseBlob"]
        assert ("tierToArchive" in archive) == (sku in ARCHIVE_TIER_SKUS), sku
        assert ("tierToCold" in archive) == (sku not in ARCHIVE_TIER_SKUS), sku


def test_lifecycle_days_are_parameters():
    rules = lifecycle_by_container(dict(main_values(), decisionArchiveCoolAfterDays=31, decisionArchiveArchiveAfterDays=181,
                                        decisionStagingRetentionDays=15, trainingSampleRetentionDays=46,
                                        deadLetterRetentionDays=31, blobVersionRetentionDays=91, dataStorageSku="Standard_LRS"))
    assert rules["decision-archive"]["baseBlob"] == {"tierToCool": {"daysAfterModificationGreaterThan": 31},
                                                     "tierToArchive": {"daysAfterModificationGreaterThan": 181}}
    assert rules["decision-staging"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == 15
    assert rules["training-sample"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == 46
    assert rules["dead-letter"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == 31
    assert rules["models"]["version"]["delete"]["daysAfterCreationGreaterThan"] == 91


def test_lifecycle_policy_is_made_only_when_there_are_rules():
    policy = resources(module_file("storage"), "Microsoft.Storage/storageAccounts/managementPolicies")
    config, condition, _ = body(next(iter(policy.values())))
    assert config["properties"]["policy"]["rules"] == "lifecycleRules"
    assert condition == {"operator": {"type": "not", "operands": {"bool_value": {
        "function": {"type": "empty", "parameters": {"item_to_test": "lifecycleRules"}}}}}}


def test_event_grid_system_topic_on_the_data_account():
    """The retraining blob triggers' containers are on the data account, so are their events."""
    topic = only_resource(module_file("eventgrid"), "Microsoft.EventGrid/systemTopics")
    assert topic["properties"]["topicType"] == "Microsoft.Storage.StorageAccounts"
    assert accessor_path(module_call("eventgrid")["params"]["storageAccountId"]) == ["dataStorage", "outputs", "id"]
    assert {"training-data", "retrain-requests"} <= data_containers()
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


def test_the_app_settings_reach_the_function_app_as_a_secure_parameter():
    """They carry the alert webhook URL (its own credential): a non-secure module parameter
    would keep it in the deployment history."""
    decorators = parse(module_file("functionapp"))["parameters"]["appSettings"]["decorators"]
    assert any(d["type"] == "secure" for d in decorators)


def test_the_host_refuses_bodies_above_the_app_s_limit_before_buffering_them():
    platform = json.dumps(parse(module_file("functionapp"))["variables"]["platformSettings"]["value"])
    assert "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT" in platform and "FRAUD_HTTP_MAX_BODY_BYTES" in platform
    assert deployed_app_settings()["FRAUD_HTTP_MAX_BODY_BYTES"] is not None
