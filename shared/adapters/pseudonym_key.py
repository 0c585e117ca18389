"""The pseudonym key (``FRAUD_PSEUDONYM_KEY``): read once at start-up, refused when unusable.

Forms of the setting:

* in Azure, a Key Vault reference (``@Microsoft.KeyVault(SecretUri=...)``) that the platform
  resolves into the secret's text before the app reads it; the text (at least 32 bytes, e.g.
  the base64 of 32 random bytes) is the key. A reference the platform could not resolve
  reaches the app unchanged and is refused, as is an empty setting: scoring does not start
  with a missing key, and there is no built-in fallback key;
* locally, ``file:<path>`` (relative to the working directory, the app's root): the file's
  bytes (at least 32) are the key. ``make run`` creates ``data/keys/pseudonym.key`` with 32
  random bytes when it is missing (``create_key_file``); the tests set a test key's text.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Mapping

from shared.domain.pseudonym import MIN_KEY_BYTES, Pseudonyms

FILE_PREFIX = "file:"
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


class PseudonymKeyError(RuntimeError):
    """FRAUD_PSEUDONYM_KEY is missing or unusable: the app refuses to score."""


def running_in_azure(env: Mapping[str, str]) -> bool:
    """App Service (and so Azure Functions) sets WEBSITE_INSTANCE_ID on every instance; the local host does not."""
    return bool(env.get("WEBSITE_INSTANCE_ID"))


def load_pseudonym_key(setting: str, env: Mapping[str, str] | None = None) -> bytes:
    env = os.environ if env is None else env
    value = setting.strip()
    where = ("in Azure it must be a Key Vault reference, @Microsoft.KeyVault(SecretUri=...), that the app's identity "
             "may read" if running_in_azure(env) else
             "locally set it to file:data/keys/pseudonym.key (make run creates that file with 32 random bytes)")
    if not value:
        raise PseudonymKeyError(f"FRAUD_PSEUDONYM_KEY is not set: {where}. Scoring refuses to start without the key "
                                "of the customer and device pseudonyms.")
    if value.startswith(KEY_VAULT_REFERENCE):
        raise PseudonymKeyError("FRAUD_PSEUDONYM_KEY is a Key Vault reference the platform did not resolve (check the "
                                "app's identity may get the secret, and the reference's status in the portal): "
                                "scoring refuses to start without the key.")
    if value.startswith(FILE_PREFIX):
        path = Path(value[len(FILE_PREFIX):])
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise PseudonymKeyError(f"FRAUD_PSEUDONYM_KEY names the key file {path}, which cannot be read "
                                    f"({exc.strerror}): {where}.") from None
        source = f"the key file {path}"
    else:
        key = value.encode("utf-8")
        source = "FRAUD_PSEUDONYM_KEY's text"
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"{source} holds {len(key)} bytes; a pseudonym key needs at least {MIN_KEY_BYTES}.")
    return key


def require_pseudonym_key(env: Mapping[str, str] | None = None) -> None:
    """Refuse to start (raise ``PseudonymKeyError``) unless FRAUD_PSEUDONYM_KEY gives a usable key.
    Called when the Function App is imported, so a host without the key runs no function and
    takes no event off the hub (a failure inside the Event Hub function would be retried, then
    skipped past)."""
    env = os.environ if env is None else env
    load_pseudonym_key(env.get("FRAUD_PSEUDONYM_KEY", ""), env)


def pseudonyms_from_setting(setting: str, env: Mapping[str, str] | None = None) -> Pseudonyms:
    return Pseudonyms(load_pseudonym_key(setting, env))


def create_key_file(path: Path) -> bool:
    """Write 32 random bytes to ``path`` (readable by its owner only) unless it exists; True when created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "wb") as out:
        out.write(secrets.token_bytes(MIN_KEY_BYTES))
    return True


LOCAL_KEY_SETTING = "file:data/keys/pseudonym.key"


def ensure_local_key(env: dict[str, str] | None = None, root: Path | None = None) -> Path | None:
    """For the local tools (``make run``, ``tools.local_host``), never the app: FRAUD_PSEUDONYM_KEY
    defaults to ``file:data/keys/pseudonym.key`` and a named key file that is missing is
    created with 32 random bytes. Returns the key file's path (None for a key given as text)."""
    env = os.environ if env is None else env
    setting = env.setdefault("FRAUD_PSEUDONYM_KEY", LOCAL_KEY_SETTING).strip()
    if not setting.startswith(FILE_PREFIX):
        return None
    path = Path(setting[len(FILE_PREFIX):])
    if not path.is_absolute() and root is not None:
        path = root / path
        env["FRAUD_PSEUDONYM_KEY"] = FILE_PREFIX + str(path)
    create_key_file(path)
    return path
