"""Storage clients from settings: a connection string (Azurite, local) or identity (Azure).

``StorageAccount.from_settings()`` reads ``AzureWebJobsStorage``; in Azure, where that is
identity-based, it reads ``AzureWebJobsStorage__blobServiceUri`` / ``__queueServiceUri`` /
``__tableServiceUri`` and authenticates with ``DefaultAzureCredential`` (the user-assigned
identity named by ``__clientId``). Every client gets the same bounded exponential-backoff
retry policy.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

from shared.config import STORAGE_CONNECTION, setting_int

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented; not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection_string(host: str = "127.0.0.1", blob: int = 10000, queue: int = 10001, table: int = 10002) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{AZURITE_ACCOUNT};"
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


@dataclass(frozen=True)
class StorageAccount:
    """Where the app's storage lives and how to authenticate to it."""

    connection_string: str | None = None
    blob_uri: str | None = None
    queue_uri: str | None = None
    table_uri: str | None = None
    client_id: str | None = None
    retries: int = 5

    @classmethod
    def from_settings(cls, env: Mapping[str, str] | None = None, name: str = STORAGE_CONNECTION) -> "StorageAccount":
        env = os.environ if env is None else env
        retries = setting_int("FRAUD_STORAGE_RETRIES", env)
        conn = env.get(name, "")
        if conn:
            return cls(connection_string=_expand(conn), retries=retries)
        blob = env.get(f"{name}__blobServiceUri")
        if not blob:
            account = env.get(f"{name}__accountName")
            if not account:
                raise RuntimeError(
                    f"storage is not configured: set {name} (a connection string) or "
                    f"{name}__blobServiceUri/__queueServiceUri/__tableServiceUri"
                )
            blob = f"https://{account}.blob.core.windows.net"
        base = blob.split(".blob.")[0]
        return cls(
            blob_uri=blob,
            queue_uri=env.get(f"{name}__queueServiceUri") or f"{base}.queue.core.windows.net",
            table_uri=env.get(f"{name}__tableServiceUri") or f"{base}.table.core.windows.net",
            client_id=env.get(f"{name}__clientId") or None,
            retries=retries,
        )

    @cached_property
    def _transport(self) -> Any:
        """One pooled HTTP session for every client. Without proxy settings in the
        environment, requests' per-call proxy lookup is skipped (about 1 ms a call)."""
        import requests
        from azure.core.pipeline.transport import RequestsTransport

        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if not any(k.lower() in ("http_proxy", "https_proxy", "all_proxy") for k in os.environ):
            session.trust_env = False
        return RequestsTransport(session=session, session_owner=False)

    def _retry_kwargs(self) -> dict[str, Any]:
        # azure-core's exponential retry: 0.8s, 1.6s, 3.2s ... bounded by retry_total.
        return {"retry_total": self.retries, "retry_backoff_factor": 0.8, "retry_backoff_max": 20,
                "connection_timeout": 5, "read_timeout": 30, "transport": self._transport}

    @cached_property
    def _credential(self) -> Any:
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=self.client_id)

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
        return BlobServiceClient(self.blob_uri, credential=self._credential, **kwargs)

    def table_service(self):
        from azure.data.tables import TableServiceClient

        if self.connection_string:
            return TableServiceClient.from_connection_string(self.connection_string, **self._retry_kwargs())
        return TableServiceClient(self.table_uri, credential=self._credential, **self._retry_kwargs())

    def queue_service(self):
        from azure.storage.queue import ExponentialRetry, QueueServiceClient

        kwargs = self._storage_retry_kwargs(ExponentialRetry)
        if self.connection_string:
            return QueueServiceClient.from_connection_string(self.connection_string, **kwargs)
        return QueueServiceClient(self.queue_uri, credential=self._credential, **kwargs)
