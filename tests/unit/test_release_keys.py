"""The release key adapters' pure parts, with real keys: a local PEM key signs and verifies (and
refuses another key's signature or other bytes); raw r||s <-> DER; Key Vault key ids, a Key Vault
JWK's public key and the signer's name from a token. Key Vault itself is not reachable here: its
verifier is exercised with the JWK it would fetch."""
import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from shared.adapters.release_keys import (
    KeyVaultKeyId, KeyVaultReleaseVerifier, LocalReleaseKey, der_to_raw, principal_from_token, public_key_from_jwk,
    raw_to_der, release_signer, release_verifier,
)
from shared.service.ports import BadSignature


def test_a_local_key_file_signs_and_verifies_and_refuses_another_key_or_other_bytes(tmp_path):
    path = tmp_path / "keys" / "release.pem"
    key = LocalReleaseKey.create_file(path)
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only
    same = LocalReleaseKey.create_file(path)  # an existing file is kept
    assert same.key_id == key.key_id and key.key_id.startswith("local:sha256:")
    signature = key.sign(b"payload")
    assert len(signature) == 64
    same.verify(b"payload", signature, key.key_id)
    with pytest.raises(BadSignature):
        same.verify(b"payload!", signature, key.key_id)
    other = LocalReleaseKey.generate()
    with pytest.raises(BadSignature, match="signed by key"):
        same.verify(b"payload", other.sign(b"payload"), other.key_id)
    with pytest.raises(BadSignature):  # another key's signature under this key's id
        same.verify(b"payload", other.sign(b"payload"), key.key_id)


def test_the_setting_selects_the_adapter(tmp_path):
    path = tmp_path / "k.pem"
    LocalReleaseKey.create_file(path)
    assert release_signer("") is None and release_verifier("  ") is None
    assert isinstance(release_verifier(str(path)), LocalReleaseKey)
    with pytest.raises(FileNotFoundError, match="create-key"):
        release_signer(str(tmp_path / "missing.pem"))


def test_a_key_that_is_not_p256_is_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization

    path = tmp_path / "p384.pem"
    path.write_bytes(ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(ValueError, match="P-256"):
        LocalReleaseKey.from_pem_file(path)


def test_raw_and_der_signatures_convert_both_ways():
    key = LocalReleaseKey.generate()
    raw = key.sign(b"x")
    assert der_to_raw(raw_to_der(raw)) == raw
    with pytest.raises(BadSignature, match="64 bytes"):
        raw_to_der(raw[:63])


def test_key_vault_key_ids_are_parsed_and_compared():
    versionless = KeyVaultKeyId.parse("https://Fraud-KV.vault.azure.net/keys/fraud-release")
    assert versionless == KeyVaultKeyId("https://fraud-kv.vault.azure.net", "fraud-release", None)
    versioned = KeyVaultKeyId.parse("https://fraud-kv.vault.azure.net/keys/fraud-release/0123abcd")
    assert versioned.version == "0123abcd" and versioned.url.endswith("/keys/fraud-release/0123abcd")
    assert versionless.same_key(versioned) and not versioned.same_key(KeyVaultKeyId.parse(
        "https://fraud-kv.vault.azure.net/keys/fraud-release/99"))
    assert not versionless.same_key(KeyVaultKeyId.parse("https://evil.vault.azure.net/keys/fraud-release/1"))
    for bad in ("http://fraud-kv.vault.azure.net/keys/k", "https://fraud-kv.vault.azure.net/secrets/k",
                "https://fraud-kv.vault.azure.net/keys", "data/keys/release.pem"):
        with pytest.raises(ValueError):
            KeyVaultKeyId.parse(bad)


def jwk_of(key: LocalReleaseKey) -> dict:
    numbers = key.private_key.public_key().public_numbers()
    b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()  # noqa: E731
    return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x), "y": b64(numbers.y)}


def test_the_key_vault_verifier_checks_es256_with_the_fetched_public_jwk_of_the_configured_key_only():
    vault_key = LocalReleaseKey.generate()  # stands in for the key inside the vault: raw r||s, as Key Vault's ES256
    fetched = []

    def fetch(credential, key_id):
        fetched.append(key_id.url)
        return jwk_of(vault_key)

    verifier = KeyVaultReleaseVerifier(KeyVaultKeyId.parse("https://fraud-kv.vault.azure.net/keys/fraud-release"),
                                       credential=None, fetch=fetch)
    signed_by = "https://fraud-kv.vault.azure.net/keys/fraud-release/v1"
    verifier.verify(b"statement", vault_key.sign(b"statement"), signed_by)
    verifier.verify(b"statement 2", vault_key.sign(b"statement 2"), signed_by)
    assert fetched == [signed_by]  # the public key is read once per key version
    with pytest.raises(BadSignature):
        verifier.verify(b"statement", LocalReleaseKey.generate().sign(b"statement"), signed_by)
    with pytest.raises(BadSignature, match="not by the release key"):
        verifier.verify(b"statement", vault_key.sign(b"statement"), "https://other.vault.azure.net/keys/fraud-release/v1")
    with pytest.raises(BadSignature, match="not by the release key"):
        verifier.verify(b"statement", vault_key.sign(b"statement"), vault_key.key_id)
    with pytest.raises(ValueError, match="P-256"):
        public_key_from_jwk({**jwk_of(vault_key), "crv": "P-384"})


def test_the_signer_is_named_from_the_token_claims():
    def token(claims):
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"eyJhbGciOiJub25lIn0.{body}.sig"

    assert principal_from_token(token({"upn": "ada@bank.example", "oid": "1"})) == "ada@bank.example"
    assert principal_from_token(token({"oid": "00000000-1111"})) == "00000000-1111"
    assert principal_from_token("not a token") is None
