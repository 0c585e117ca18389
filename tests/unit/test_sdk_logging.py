"""The Azure SDK's HTTP request logging stays off wherever the app runs: importing the Function
App sets the SDK's loggers to WARNING (the Python worker's root logger would pass INFO request
lines, with table URLs, on to Application Insights), and host.json keeps the host's Azure.Core
logging at Warning too."""
import json
import logging
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

IMPORT_THEN_REPORT = """
import logging
logging.basicConfig(level=logging.DEBUG)  # as the Functions worker: everything reaches its handler
for name in ("azure", "azure.core.pipeline.policies.http_logging_policy"):
    logging.getLogger(name).setLevel(logging.NOTSET)
import function_app
policy = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
print(policy.getEffectiveLevel(), policy.isEnabledFor(logging.INFO), logging.getLogger("azure").getEffectiveLevel())
"""


def test_importing_the_function_app_turns_the_sdk_http_logging_off():
    result = subprocess.run([sys.executable, "-c", IMPORT_THEN_REPORT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    policy_level, info_enabled, azure_level = result.stdout.split()
    assert int(policy_level) >= logging.WARNING and info_enabled == "False" and int(azure_level) >= logging.WARNING


def test_a_level_set_higher_is_kept():
    from shared.composition import quiet_azure_sdk_logging

    logger = logging.getLogger("azure.identity")
    before = logger.level
    try:
        logger.setLevel(logging.ERROR)
        quiet_azure_sdk_logging()
        assert logger.level == logging.ERROR
    finally:
        logger.setLevel(before)


def test_host_json_keeps_the_hosts_azure_sdk_logging_at_warning():
    levels = json.loads((ROOT / "host.json").read_text())["logging"]["logLevel"]
    assert levels["Azure.Core"] in ("Warning", "Error", "Critical", "None")
