"""The release key (``FRAUD_RELEASE_KEY``): signs and verifies releases of models and rules.

Two forms of the setting:

* a Key Vault key identifier ``https://<vault>.vault.azure.net/keys/<name>[/<version>]`` (EC
  P-256), in Azure. Signing goes through Key Vault (``CryptographyClient.sign``, ES256: the
  release identity and admins hold Key Vault Crypto User; ``azure-keyvault-keys`` is imported
  by the signer only, lazily). Verifying needs the public half only: the scoring identity
  (Key Vault Reader) reads the key's JWK once per key version and checks signatures here with
  ``cryptography``; it can never sign.
* the path of a PEM EC P-256 private key file, locally (``make run`` creates
  ``data/keys/release-signing.pem``; tests use a temporary one).

Signatures are raw ``r || s`` (64 bytes: what Key Vault's ES256 returns); ``cryptography``
wants DER, so ``raw_to_der`` / ``der_to_raw`` convert.
"""
from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from shared.service.ports import BadSignature

_COORDINATE = 32  # bytes of a P-256 coordinate / of r and s


def raw_to_der(signature: bytes) -> bytes:
    """``r || s`` (64 bytes) as the DER SEQUENCE that ``cryptography`` verifies."""
    if len(signature) != 2 * _COORDINATE:
        raise BadSignature(f"an ES256 signature has 64 bytes, not {len(signature)}")
    return encode_dss_signature(int.from_bytes(signature[:_COORDINATE], "big"),
                                int.from_bytes(signature[_COORDINATE:], "big"))


def der_to_raw(signature: bytes) -> bytes:
    r, s = decode_dss_signature(signature)
    return r.to_bytes(_COORDINATE, "big") + s.to_bytes(_COORDINATE, "big")


def _verify_with(public_key: ec.EllipticCurvePublicKey, payload: bytes, signature: bytes) -> None:
    try:
        public_key.verify(raw_to_der(signature), payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadSignature("the signature was not made by the release key over these bytes") from None


def _p256(key: Any, where: str) -> None:
    if not isinstance(getattr(key, "curve", None), ec.SECP256R1):
        raise ValueError(f"{where} is not an EC P-256 key")


# -- a local key file ---------------------------------------------------------------------------

@dataclass
class LocalReleaseKey:
    """A PEM EC P-256 private key held in this process: signs and verifies (``make run``, tests)."""

    private_key: ec.EllipticCurvePrivateKey
    path: str = ""

    @classmethod
    def generate(cls) -> "LocalReleaseKey":
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem_file(cls, path: str | Path) -> "LocalReleaseKey":
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"FRAUD_RELEASE_KEY names {path}, which does not exist "
                                    "(create one: python -m tools.models create-key)") from None
        key = serialization.load_pem_private_key(data, password=None)
        _p256(key, str(path))
        return cls(key, str(path))  # type: ignore[arg-type]

    @classmethod
    def create_file(cls, path: str | Path) -> "LocalReleaseKey":
        """A new key written to ``path`` (readable by its owner only); an existing file is kept and loaded."""
        path = Path(path)
        if path.exists():
            return cls.from_pem_file(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = cls.generate()
        pem = key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return cls(key.private_key, str(path))

    @property
    def key_id(self) -> str:
        """``local:`` and the sha256 of the public key (DER): names the key without revealing anything."""
        der = self.private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"local:sha256:{hashlib.sha256(der).hexdigest()[:32]}"

    def sign(self, payload: bytes) -> bytes:
        return der_to_raw(self.private_key.sign(payload, ec.ECDSA(hashes.SHA256())))

    def signed_in(self) -> str | None:
        try:
            return getpass.getuser()
        except Exception:  # no user name in this environment
            return None

    def verify(self, payload: bytes, signature: bytes, key_id: str) -> None:
        if key_id != self.key_id:
            raise BadSignature(f"signed by key {key_id}, this process trusts {self.key_id}")
        _verify_with(self.private_key.public_key(), payload, signature)


# -- Key Vault ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyVaultKeyId:
    """``https://<vault>.vault.azure.net/keys/<name>[/<version>]`` in its parts."""

    vault_url: str
    name: str
    version: str | None = None

    @classmethod
    def parse(cls, value: str) -> "KeyVaultKeyId":
        parts = urlsplit(value.strip())
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme != "https" or not parts.hostname or len(segments) not in (2, 3) or segments[0] != "keys":
            raise ValueError(f"not a Key Vault key identifier (https://<vault>.vault.azure.net/keys/<name>): {value!r}")
        port = f":{parts.port}" if parts.port else ""
        return cls(f"https://{parts.hostname.lower()}{port}", segments[1], segments[2] if len(segments) == 3 else None)

    @property
    def url(self) -> str:
        return f"{self.vault_url}/keys/{self.name}" + (f"/{self.version}" if self.version else "")

    def same_key(self, other: "KeyVaultKeyId") -> bool:
        """Whether ``other`` is this key (any version when this one names none)."""
        return (self.vault_url, self.name) == (other.vault_url, other.name) and self.version in (None, other.version)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_from_jwk(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    """The public key of a Key Vault JWK (``kty`` EC / EC-HSM, ``crv`` P-256, ``x``, ``y``)."""
    if jwk.get("kty") not in ("EC", "EC-HSM") or jwk.get("crv") != "P-256":
        raise ValueError(f"the release key must be EC P-256, Key Vault says {jwk.get('kty')} {jwk.get('crv')}")
    x, y = (int.from_bytes(_b64url(jwk[c]), "big") for c in ("x", "y"))
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


def principal_from_token(token: str) -> str | None:
    """Who an Entra access token was issued to (``upn``, ``preferred_username``, ``unique_name``,
    else the object id): what ``approved_by`` records when ``--by`` is not given. Read, not verified:
    Key Vault verifies the token; this only names the signer in the statement."""
    try:
        claims = json.loads(_b64url(token.split(".")[1]))
    except (IndexError, ValueError):
        return None
    for claim in ("upn", "preferred_username", "unique_name", "email", "oid"):
        if claims.get(claim):
            return str(claims[claim])
    return None


VAULT_SCOPE = "https://vault.azure.net/.default"


@dataclass
class KeyVaultReleaseSigner:
    """Signs with the Key Vault key (ES256 over the payload's SHA-256); the key never leaves the vault."""

    key: KeyVaultKeyId
    credential: Any
    _client: Any = None

    def client(self) -> Any:
        """A CryptographyClient on the key's current version (a versionless setting is resolved once,
        so the statement names exactly the version that signs)."""
        if self._client is None:
            from azure.keyvault.keys import KeyClient  # the signer's only dependency on azure-keyvault-keys
            from azure.keyvault.keys.crypto import CryptographyClient

            key: Any = self.key.url
            if self.key.version is None:
                key = KeyClient(self.key.vault_url, self.credential).get_key(self.key.name)
            self._client = CryptographyClient(key, self.credential)
        return self._client

    @property
    def key_id(self) -> str:
        return self.client().key_id

    def sign(self, payload: bytes) -> bytes:
        from azure.keyvault.keys.crypto import SignatureAlgorithm

        result = self.client().sign(SignatureAlgorithm.es256, hashlib.sha256(payload).digest())
        return bytes(result.signature)  # ES256: raw r || s, 64 bytes

    def signed_in(self) -> str | None:
        return principal_from_token(self.credential.get_token(VAULT_SCOPE).token)


def _fetch_jwk(credential: Any, key: KeyVaultKeyId) -> dict[str, Any]:
    """GET <vault>/keys/<name>/<version>: the key's public JWK (Key Vault Reader may read it)."""
    import requests

    token = credential.get_token(VAULT_SCOPE).token
    response = requests.get(f"{key.url}?api-version=7.4", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    response.raise_for_status()
    return response.json()["key"]


@dataclass
class KeyVaultReleaseVerifier:
    """Verifies with the public half of the configured Key Vault key, any of its versions."""

    key: KeyVaultKeyId
    credential: Any
    fetch: Callable[[Any, KeyVaultKeyId], dict[str, Any]] = _fetch_jwk
    _public: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, payload: bytes, signature: bytes, key_id: str) -> None:
        try:
            signer = KeyVaultKeyId.parse(key_id)
        except ValueError:
            raise BadSignature(f"signed by {key_id!r}, not by the release key {self.key.url}") from None
        if not self.key.same_key(signer):
            raise BadSignature(f"signed by {key_id}, not by the release key {self.key.url}")
        with self._lock:
            public = self._public.get(signer.url)
            if public is None:
                public = self._public[signer.url] = public_key_from_jwk(self.fetch(self.credential, signer))
        _verify_with(public, payload, signature)


# -- from the setting ----------------------------------------------------------------------------

def is_key_vault(setting: str) -> bool:
    return setting.strip().lower().startswith("https://")


def _credential(client_id: str | None) -> Any:
    from shared.adapters.storage_account import shared_credential

    return shared_credential(client_id)


def release_signer(setting: str, client_id: str | None = None) -> Any | None:
    """The signer that ``FRAUD_RELEASE_KEY`` names (None when it is empty). In Azure it signs as
    the identity ``client_id`` names (the release identity), else as ``DefaultAzureCredential``
    finds (an admin's ``az login``)."""
    if not setting.strip():
        return None
    if is_key_vault(setting):
        return KeyVaultReleaseSigner(KeyVaultKeyId.parse(setting), _credential(client_id))
    return LocalReleaseKey.from_pem_file(setting)


def release_verifier(setting: str, client_id: str | None = None) -> Any | None:
    """The verifier of ``FRAUD_RELEASE_KEY`` (None when it is empty: nothing can be verified)."""
    if not setting.strip():
        return None
    if is_key_vault(setting):
        return KeyVaultReleaseVerifier(KeyVaultKeyId.parse(setting), _credential(client_id))
    return LocalReleaseKey.from_pem_file(setting)
