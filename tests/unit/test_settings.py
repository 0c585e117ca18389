"""Every setting the code reads is registered, in local.settings.example.json and in the README."""
import json
import re
from pathlib import Path

from shared.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def test_settings_read_in_code_are_registered():
    registered = {s.name for s in SETTINGS}
    used = set()
    for path in list((ROOT / "shared").rglob("*.py")) + list((ROOT / "functions").glob("*.py")):
        used |= set(re.findall(r'setting(?:_int|_float)?\(\s*"([A-Z][A-Z_]+)"', path.read_text()))
        used |= set(re.findall(r'"%([A-Z][A-Z_]{2,})%"', path.read_text()))
    assert used and used <= registered, used - registered


def test_the_example_local_settings_list_every_setting():
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    assert {s.name for s in SETTINGS} <= set(values)
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"


def test_the_readme_explains_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in readme]
    assert missing == []


def test_every_table_and_container_the_app_uses_is_created_by_the_template():
    bicep = (ROOT / "infra" / "bicep" / "main.bicep").read_text()
    names = {s.default for s in SETTINGS if s.name.endswith(("_TABLE", "_CONTAINER", "_QUEUE"))}
    missing = sorted(n for n in names if f"'{n}'" not in bicep)
    assert missing == []
