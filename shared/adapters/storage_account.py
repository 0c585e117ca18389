"""Storage clients from settings: a connection string (Azurite, local) or identity (Azure).

Three kinds of account, each named by a connection setting:

* the host's, ``AzureWebJobsStorage``: Event Hubs checkpoints, leases, the deployment
  package. The app's own clients do not use it unless there is no data account;
* the data account, ``FRAUD_DATA_STORAGE`` (``data_connection``): every table, container
  and queue the app builds in ``AppServices``, and the containers the retrain's blob
  triggers watch; when that setting is absent in every form, ``AzureWebJobsStorage``;
* the profile accounts that ``FRAUD_PROFILE_ACCOUNTS`` names (``shared/adapters/profile_accounts.py``);
* the model storage, ``FRAUD_MODEL_STORAGE`` (``model_connection``): how the retrain and the
  release tools write the model registry (in Azure the release identity, the only one that may
  write the ``models`` container); when it is absent in every form, the data account's setting.

``StorageAccount.from_settings(env, name)`` reads one connection setting in either of its
forms: ``<name>`` as a connection string, or the identity-based ``<name>__blobServiceUri`` /
``__queueServiceUri`` / ``__tableServiceUri`` (any one is enough: the others follow from the
account's host name) or ``<name>__accountName``, authenticated with ``DefaultAzureCredential``
(the user-assigned identity named by ``__clientId``). Every client gets the same bounded
exponential-backoff retry policy.

Every client of an account shares one HTTP transport (``StorageAccount._transport``), below all of
the SDK's policies: ``LeanTransport`` (shared/adapters/http_transport.py, keep-alive connections on
``http.client``) by default, or azure-core's ``RequestsTransport`` when ``FRAUD_STORAGE_TRANSPORT``
is ``requests`` or when a proxy variable (``http_proxy``, ``https_proxy``, ``all_proxy``, any case)
is set in the environment: requests honours proxies, the lean transport does not. The transport
reads each connection within ``CONNECTION_TIMEOUT`` and each socket read within ``READ_TIMEOUT``.

``transport_factory`` (module level, default None) is a measurement hook, unused in production:
when a benchmark or test sets it to a callable, each account's pooled transport is passed
through it once (``transport_factory(default) -> HttpTransport``) before any client is built,
so a wrapper can observe every HTTP request below the SDK's retry policy (bench/request_counter.py
counts them). Set it before the clients are built (before ``AppServices`` builds them).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from shared.config import (DATA_CONNECTION, MODEL_CONNECTION, STORAGE_CONNECTION, STORAGE_TRANSPORTS, setting_int,
                           storage_transport)

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented; not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Two more emulated accounts (tools/azurite.py declares all three to Azurite through
# AZURITE_ACCOUNTS), so tests can put the data apart from the host's account and spread profiles
# over two accounts. Their keys are made up here (base64 of a phrase): not secrets either.
AZURITE_EXTRA_ACCOUNTS = ("devstoreaccount2", "devstoreaccount3")
AZURITE_KEYS = {AZURITE_ACCOUNT: AZURITE_KEY,
                "devstoreaccount2": "ZnJhdWQtc2NvcmluZyBzZWNvbmQgZW11bGF0ZWQgYWNjb3VudCBrZXk=",
                "devstoreaccount3": "ZnJhdWQtc2NvcmluZyB0aGlyZCBlbXVsYXRlZCBhY2NvdW50IGtleQ=="}

SERVICES = ("blob", "queue", "table")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
CONNECTION_TIMEOUT = 5  # seconds to connect
READ_TIMEOUT = 30       # seconds a socket read may wait (not a whole response)
# The properties of an identity-based connection that say which account it is (credential and
# clientId only say how to authenticate).
_ACCOUNT_PROPERTIES = tuple(f"{service}ServiceUri" for service in SERVICES) + ("accountName",)


def azurite_connection_string(host: str = "127.0.0.1", blob: int = 10000, queue: int = 10001, table: int = 10002,
                              account: str = AZURITE_ACCOUNT) -> str:
    """The connection string of an emulated account (path-style endpoints, as Azurite serves them)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={AZURITE_KEYS[account]};"
        f"BlobEndpoint=http://{host}:{blob}/{account};"
        f"QueueEndpoint=http://{host}:{queue}/{account};"
        f"TableEndpoint=http://{host}:{table}/{account};"
    )


def create_if_missing(create: Any) -> None:
    """Create a table, container or queue; one that exists already is fine."""
    from azure.core.exceptions import ResourceExistsError

    try:
        create()
    except ResourceExistsError:
        pass


def _expand(connection_string: str) -> str:
    if connection_string.replace(" ", "").lower().startswith("usedevelopmentstorage=true"):
        return azurite_connection_string()
    return connection_string


def connection_is_set(name: str, env: Mapping[str, str]) -> bool:
    """Whether the connection setting ``name`` names an account, in either form."""
    return bool(env.get(name)) or any(env.get(f"{name}__{prop}") for prop in _ACCOUNT_PROPERTIES)


def data_connection(env: Mapping[str, str] | None = None) -> str:
    """The connection setting of the app's data account: ``FRAUD_DATA_STORAGE`` when it is set
    in any form, else ``AzureWebJobsStorage`` (one account for everything, as before #15)."""
    env = os.environ if env is None else env
    return DATA_CONNECTION if connection_is_set(DATA_CONNECTION, env) else STORAGE_CONNECTION


def model_connection(env: Mapping[str, str] | None = None) -> str:
    """The connection setting the model registry is written with: ``FRAUD_MODEL_STORAGE`` when it
    is set in any form, else the data account's (``data_connection``)."""
    env = os.environ if env is None else env
    return MODEL_CONNECTION if connection_is_set(MODEL_CONNECTION, env) else data_connection(env)


def proxy_configured(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment names a proxy (``http_proxy``, ``https_proxy`` or ``all_proxy``, any case)."""
    env = os.environ if env is None else env
    return any(value and key.lower() in PROXY_VARIABLES for key, value in env.items())


def _service_uris(name: str, env: Mapping[str, str]) -> dict[str, str | None]:
    """The blob, queue and table endpoints of an identity-based connection. Those not given
    follow from the account's host name (``<account>.<service>.<suffix>``, any cloud's suffix);
    None when they cannot (a client of that service then says which property to set)."""
    given = {service: env.get(f"{name}__{service}ServiceUri") or None for service in SERVICES}
    known = next((uri for uri in given.values() if uri), None)
    account = env.get(f"{name}__accountName")
    if known:
        parts = urlsplit(known)
        labels = (parts.hostname or "").split(".", 2)
        if len(labels) == 3 and labels[1] in SERVICES:
            account, suffix, scheme = labels[0], labels[2], parts.scheme or "https"
        else:
            account = None
    elif account:
        suffix, scheme = "core.windows.net", "https"
    else:
        raise RuntimeError(
            f"storage is not configured: set {name} (a connection string) or "
            f"{name}__blobServiceUri/__queueServiceUri/__tableServiceUri"
        )
    return {service: given[service] or (f"{scheme}://{account}.{service}.{suffix}" if account else None)
            for service in SERVICES}


# The measurement hook of the module docstring: None (production) keeps the SDK's transport as built.
transport_factory: Callable[[Any], Any] | None = None

_credentials: dict[str | None, Any] = {}
_credentials_lock = threading.Lock()


def shared_credential(client_id: str | None) -> Any:
    """One ``DefaultAzureCredential`` per identity for the whole process: the data account and
    every profile account use the same storage token, fetched and cached once."""
    with _credentials_lock:
        credential = _credentials.get(client_id)
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = _credentials[client_id] = DefaultAzureCredential(managed_identity_client_id=client_id)
        return credential


@dataclass(frozen=True)
class StorageAccount:
    """Where the app's storage lives and how to authenticate to it."""

    connection_string: str | None = field(default=None, repr=False)  # may hold an account key
    blob_uri: str | None = None
    queue_uri: str | None = None
    table_uri: str | None = None
    client_id: str | None = None
    retries: int = 5
    setting: str = STORAGE_CONNECTION  # the connection setting it was read from (for messages)
    transport: str = "lean"  # FRAUD_STORAGE_TRANSPORT: "lean" | "requests" (a proxy in the environment: requests)

    def __post_init__(self) -> None:
        if self.transport not in STORAGE_TRANSPORTS:
            raise ValueError(f"unknown storage transport {self.transport!r}: one of {', '.join(STORAGE_TRANSPORTS)}")

    @classmethod
    def from_settings(cls, env: Mapping[str, str] | None = None, name: str = STORAGE_CONNECTION) -> "StorageAccount":
        """The account that the connection setting ``name`` names (see the module docstring)."""
        env = os.environ if env is None else env
        retries = setting_int("FRAUD_STORAGE_RETRIES", env)
        transport = storage_transport(env)
        conn = env.get(name, "")
        if conn:
            return cls(connection_string=_expand(conn), retries=retries, setting=name, transport=transport)
        uris = _service_uris(name, env)
        return cls(blob_uri=uris["blob"], queue_uri=uris["queue"], table_uri=uris["table"],
                   client_id=env.get(f"{name}__clientId") or None, retries=retries, setting=name,
                   transport=transport)

    @classmethod
    def for_data(cls, env: Mapping[str, str] | None = None) -> "StorageAccount":
        """The app's data account (``data_connection``)."""
        env = os.environ if env is None else env
        return cls.from_settings(env, data_connection(env))

    @classmethod
    def for_models(cls, env: Mapping[str, str] | None = None) -> "StorageAccount":
        """The account and identity the model registry is written with (``model_connection``)."""
        env = os.environ if env is None else env
        return cls.from_settings(env, model_connection(env))

    @property
    def transport_kind(self) -> str:
        """The transport the clients get: ``requests`` when set so or when a proxy is configured
        in the environment (the lean transport does not go through proxies), else ``lean``."""
        return "requests" if self.transport == "requests" or proxy_configured() else "lean"

    @cached_property
    def _transport(self) -> Any:
        """One pooled HTTP transport for every client of the account (``transport_kind``),
        passed through ``transport_factory`` when a measurement sets it."""
        transport = self._requests_transport() if self.transport_kind == "requests" else self._lean_transport()
        return transport if transport_factory is None else transport_factory(transport)

    @staticmethod
    def _lean_transport() -> Any:
        from shared.adapters.http_transport import LeanTransport

        return LeanTransport(connection_timeout=CONNECTION_TIMEOUT, read_timeout=READ_TIMEOUT)

    @staticmethod
    def _requests_transport() -> Any:
        """One pooled requests session. Without proxy settings in the environment,
        requests' per-call proxy lookup is skipped (about 1 ms a call)."""
        import requests
        from azure.core.pipeline.transport import RequestsTransport

        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if not proxy_configured():
            session.trust_env = False
        return RequestsTransport(session=session, session_owner=False)

    def _retry_kwargs(self) -> dict[str, Any]:
        # azure-core's exponential retry: 0.8s, 1.6s, 3.2s ... bounded by retry_total. The client's
        # connection_timeout / read_timeout only shape a transport the client builds itself; the
        # shared transport passed here has its own (LeanTransport: CONNECTION_TIMEOUT, READ_TIMEOUT).
        return {"retry_total": self.retries, "retry_backoff_factor": 0.8, "retry_backoff_max": 20,
                "connection_timeout": CONNECTION_TIMEOUT, "read_timeout": READ_TIMEOUT, "transport": self._transport}

    @property
    def _credential(self) -> Any:
        return shared_credential(self.client_id)

    def _uri(self, service: str) -> str:
        uri = getattr(self, f"{service}_uri")
        if not uri:
            raise RuntimeError(f"storage is not configured for {service}s: set {self.setting}__{service}ServiceUri")
        return uri

    def _storage_retry_kwargs(self, retry_class: Any) -> dict[str, Any]:
        # Blob and Queue clients bring their own ExponentialRetry, whose default first wait
        # is 15 s (then 18 s, 24 s): far too long inside a scoring call. Same schedule as tables.
        policy = retry_class(initial_backoff=0.8, increment_base=2, retry_total=self.retries, random_jitter_range=0.4)
        return {**self._retry_kwargs(), "retry_policy": policy}

    def blob_service(self):
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        kwargs = self._storage_retry_kwargs(ExponentialRetry)
        if self.connection_string:
            return BlobServiceClient.from_connection_string(self.connection_string, **kwargs)
        return BlobServiceClient(self._uri("blob"), credential=self._credential, **kwargs)

    def table_service(self):
        from azure.data.tables import TableServiceClient

        if self.connection_string:
            return TableServiceClient.from_connection_string(self.connection_string, **self._retry_kwargs())
        return TableServiceClient(self._uri("table"), credential=self._credential, **self._retry_kwargs())

    def queue_service(self):
        from azure.storage.queue import ExponentialRetry, QueueServiceClient

        kwargs = self._storage_retry_kwargs(ExponentialRetry)
        if self.connection_string:
            return QueueServiceClient.from_connection_string(self.connection_string, **kwargs)
        return QueueServiceClient(self._uri("queue"), credential=self._credential, **kwargs)
