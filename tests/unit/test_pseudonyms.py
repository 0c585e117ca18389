"""Keyed pseudonyms (shared/domain/pseudonym.py) and their key (shared/adapters/pseudonym_key.py):
deterministic per key, separated per kind, unlinkable without the key; a missing, unresolved or
short key refuses to start scoring, and there is no built-in key to fall back on."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import TEST_PSEUDONYM_KEY, TEST_PSEUDONYMS
from shared.adapters.pseudonym_key import (PseudonymKeyError, create_key_file, ensure_local_key, load_pseudonym_key,
                                           pseudonyms_from_setting)
from shared.domain.features import short_hash
from shared.domain.pseudonym import Pseudonyms, is_pseudonym

ROOT = Path(__file__).resolve().parents[2]


def test_a_pseudonym_is_hmac_sha256_of_kind_and_id_truncated_to_128_bits():
    import hashlib
    import hmac

    mac = hmac.new(TEST_PSEUDONYM_KEY.encode(), b"customer\x00C1", hashlib.sha256).hexdigest()
    assert TEST_PSEUDONYMS.customer("C1") == "cu_" + mac[:32]
    assert is_pseudonym(TEST_PSEUDONYMS.customer("C1"), "customer") and is_pseudonym(TEST_PSEUDONYMS.device("D1"), "device")
    assert not is_pseudonym(TEST_PSEUDONYMS.customer("C1"), "device") and not is_pseudonym("cu_C1", "customer")


def test_pseudonyms_are_stable_per_key_separated_per_kind_and_differ_across_keys():
    again = Pseudonyms(TEST_PSEUDONYM_KEY.encode())
    other = Pseudonyms(b"k" * 32)
    assert again.customer("C-42") == TEST_PSEUDONYMS.customer("C-42") and again == TEST_PSEUDONYMS
    assert TEST_PSEUDONYMS.customer("X")[3:] != TEST_PSEUDONYMS.device("X")[3:]  # same id, unrelated pseudonyms
    assert other.customer("C-42") != TEST_PSEUDONYMS.customer("C-42") and other != TEST_PSEUDONYMS
    assert TEST_PSEUDONYMS.device("D1") != "dv_" + short_hash("D1")  # not today's unkeyed hash
    ids = [f"C{i}" for i in range(5000)]
    assert len({TEST_PSEUDONYMS.customer(c) for c in ids}) == len(ids)
    assert TEST_PSEUDONYM_KEY not in repr(TEST_PSEUDONYMS)


def test_a_short_key_is_refused():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Pseudonyms(b"too short")


@pytest.mark.parametrize("in_azure", [True, False], ids=["azure", "local"])
def test_a_missing_key_is_refused_with_what_to_set(in_azure):
    env = {"WEBSITE_INSTANCE_ID": "abc123"} if in_azure else {}
    with pytest.raises(PseudonymKeyError) as refused:
        load_pseudonym_key("  ", env)
    message = str(refused.value)
    assert "FRAUD_PSEUDONYM_KEY is not set" in message
    assert ("Key Vault reference" in message) == in_azure and ("file:data/keys/pseudonym.key" in message) != in_azure


def test_an_unresolved_key_vault_reference_is_refused():
    with pytest.raises(PseudonymKeyError, match="did not resolve"):
        load_pseudonym_key("@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/pseudonym-key/)",
                           {"WEBSITE_INSTANCE_ID": "x"})


def test_the_key_is_the_resolved_text_or_a_files_bytes(tmp_path):
    assert load_pseudonym_key(TEST_PSEUDONYM_KEY, {}) == TEST_PSEUDONYM_KEY.encode()
    with pytest.raises(PseudonymKeyError, match="holds 9 bytes"):
        load_pseudonym_key("short-key", {})
    key_file = tmp_path / "keys" / "pseudonym.key"
    with pytest.raises(PseudonymKeyError, match="cannot be read"):
        load_pseudonym_key(f"file:{key_file}", {})
    assert create_key_file(key_file) and not create_key_file(key_file)  # created once, never overwritten
    key = key_file.read_bytes()
    assert len(key) == 32 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_pseudonym_key(f"file:{key_file}", {}) == key
    assert pseudonyms_from_setting(f"file:{key_file}", {}) == Pseudonyms(key)


def test_the_local_tools_default_to_a_key_file_they_create(tmp_path):
    env: dict[str, str] = {}
    path = ensure_local_key(env, tmp_path)
    assert path == tmp_path / "data" / "keys" / "pseudonym.key" and len(path.read_bytes()) == 32
    assert env["FRAUD_PSEUDONYM_KEY"] == f"file:{path}"
    assert ensure_local_key({"FRAUD_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY}, tmp_path) is None  # a given key is used as is


def test_scoring_refuses_to_start_without_the_key():
    from shared.composition import AppServices

    services = AppServices({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "FRAUD_PSEUDONYM_KEY": "",
                            "WEBSITE_INSTANCE_ID": "instance-1"})
    with pytest.raises(PseudonymKeyError, match="Key Vault reference"):
        services.scoring  # noqa: B018  (building it is what fails)


def test_the_app_has_no_built_in_key():
    """A process started without FRAUD_PSEUDONYM_KEY cannot build the profiles: no silent fallback."""
    code = ("from shared.composition import AppServices\n"
            "try:\n    AppServices({'AzureWebJobsStorage': 'UseDevelopmentStorage=true'}).profiles\n"
            "except Exception as exc:\n    print(type(exc).__name__)\n")
    env = {k: v for k, v in os.environ.items() if k != "FRAUD_PSEUDONYM_KEY"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "PseudonymKeyError", result.stdout + result.stderr


def test_the_function_app_refuses_to_start_without_the_key():
    """In Azure: the import fails with what to set, so the host runs no function (no event is
    taken off the hub and then skipped); with the key it imports."""
    env = {k: v for k, v in os.environ.items() if k != "FRAUD_PSEUDONYM_KEY"}
    refused = subprocess.run([sys.executable, "-c", "import function_app"], cwd=ROOT, capture_output=True, text=True,
                             env={**env, "WEBSITE_INSTANCE_ID": "instance-1"}, timeout=120)
    assert refused.returncode != 0
    assert "PseudonymKeyError" in refused.stderr and "Key Vault reference" in refused.stderr
    started = subprocess.run([sys.executable, "-c", "import function_app"], cwd=ROOT, capture_output=True, text=True,
                             env={**env, "FRAUD_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY}, timeout=120)
    assert started.returncode == 0, started.stderr


def test_pseudonyms_kept_computed_are_the_same_and_bounded(monkeypatch):
    from shared.domain import pseudonym

    monkeypatch.setattr(pseudonym, "MAX_KNOWN", 3)
    kept = pseudonym.Pseudonyms(b"k" * 32)
    ids = [f"C{i}" for i in range(10)]
    first = [kept.customer(i) for i in ids] + [kept.device(i) for i in ids]
    again = [kept.customer(i) for i in ids] + [kept.device(i) for i in ids]
    fresh = pseudonym.Pseudonyms(b"k" * 32)
    assert first == again == [fresh.customer(i) for i in ids] + [fresh.device(i) for i in ids]
    assert len(set(first)) == 20 and len(kept._known) <= 3
