"""LeanTransport (shared/adapters/http_transport.py) under the real Azure SDK clients, built by
StorageAccount, on Azurite: tables (with the lean entity-group transaction), blobs (block and
append, a streamed download of more than 10 MiB), queues, and 32 threads at once. Then its
keep-alive retry and error mapping against tiny local HTTP servers on real sockets. Nothing is
timed and nothing sleeps: the tests wait on conditions."""
from __future__ import annotations

import gzip
import http.client
import os
import socket
import ssl
import struct
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import HttpRequest as LegacyHttpRequest
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest

from shared.adapters import storage_account
from shared.adapters.http_transport import LeanLegacyResponse, LeanRestResponse, LeanTransport
from shared.adapters.storage_account import PROXY_VARIABLES, StorageAccount
from shared.adapters.tables import BatchRejected, read_entity, submit_batch
from shared.config import FraudConfig
from tools.azurite import free_port

MiB = 1024 * 1024
WAIT = 30  # seconds: only a bound on waiting for a condition, never a measured time


@pytest.fixture
def no_proxy(monkeypatch):
    for key in [k for k in os.environ if k.lower() in PROXY_VARIABLES]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("FRAUD_STORAGE_TRANSPORT", raising=False)


@pytest.fixture
def account(azurite, no_proxy) -> StorageAccount:
    account = StorageAccount.from_settings({"AzureWebJobsStorage": azurite.connection_string,
                                            "FRAUD_STORAGE_RETRIES": "1"})
    assert isinstance(account._transport, LeanTransport)
    return account


def name(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:10]


class Responses:
    """A ``raw_response_hook``: the type of each response the SDK got from its transport."""

    def __init__(self) -> None:
        self.types: list[type] = []

    def __call__(self, pipeline_response) -> None:
        self.types.append(type(pipeline_response.http_response))


# -- the SDK clients on Azurite ------------------------------------------------------------------
def test_tables_through_the_lean_transport(account):
    service = account.table_service()
    table_name = name("lean")
    service.create_table(table_name)
    table = service.get_table_client(table_name)
    seen = Responses()

    table.upsert_entity({"PartitionKey": "p", "RowKey": "r1", "n": 1, "text": "naïve ₦"}, raw_response_hook=seen)
    entity = table.get_entity("p", "r1", raw_response_hook=seen)
    assert (entity["n"], entity["text"]) == (1, "naïve ₦")
    assert seen.types == [LeanRestResponse, LeanRestResponse]
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "missing")
    assert read_entity(table, "p", "missing") is None

    etags = submit_batch(table, [("create", {"PartitionKey": "p", "RowKey": "r2", "n": 2}),
                                 ("create", {"PartitionKey": "p", "RowKey": "r3", "n": 3}),
                                 ("update", {"PartitionKey": "p", "RowKey": "r1", "n": 10},
                                  {"etag": entity.metadata["etag"]})])
    assert all(etags)
    updated, etag = read_entity(table, "p", "r1")
    assert (updated["n"], "text" in updated, etag) == (10, False, etags[2])  # "update" replaces the entity
    with pytest.raises(BatchRejected) as stale:  # the same ETag again: refused, nothing applied
        submit_batch(table, [("update", {"PartitionKey": "p", "RowKey": "r1", "n": 99},
                              {"etag": entity.metadata["etag"]})])
    assert stale.value.status_code == 412
    rows = {e["RowKey"]: e["n"] for e in table.query_entities("PartitionKey eq @pk", parameters={"pk": "p"})}
    assert rows == {"r1": 10, "r2": 2, "r3": 3}
    assert sorted(t.name for t in service.query_tables(f"TableName eq '{table_name}'")) == [table_name]
    service.delete_table(table_name)

    transport = account._transport
    assert transport.connections_opened >= 1
    assert transport.idle_connections() >= 1  # kept alive for the next request


def test_blobs_block_and_append_and_a_streamed_download_of_more_than_10_mib(account):
    service = account.blob_service()
    container = service.get_container_client(name("lean-"))
    container.create_container()
    data = os.urandom(10 * MiB + 12345)
    seen = Responses()

    container.upload_blob("big.bin", data, raw_response_hook=seen)
    downloader = container.download_blob("big.bin", raw_response_hook=seen)
    assert downloader.size == len(data)
    chunks = list(downloader.chunks())
    assert b"".join(chunks) == data  # byte for byte
    assert set(seen.types) == {LeanRestResponse}
    assert container.download_blob("big.bin", offset=3 * MiB, length=5 * MiB + 7).readall() == data[3 * MiB:8 * MiB + 7]

    append = container.get_blob_client("log.txt")
    append.create_append_blob()
    for k in range(3):
        append.append_block(f"line {k}\n".encode())
    assert append.download_blob().readall() == b"line 0\nline 1\nline 2\n"
    container.upload_blob("small.json", b'{"a": 1}', blob_type="AppendBlob")

    assert sorted(b.name for b in container.list_blobs()) == ["big.bin", "log.txt", "small.json"]
    assert container.get_blob_client("small.json").get_blob_properties().size == 8  # a HEAD
    with pytest.raises(ResourceNotFoundError):
        container.download_blob("missing.bin").readall()
    container.delete_container()


def test_queues_send_receive_delete(account):
    queue = account.queue_service().get_queue_client(name("lean-"))
    queue.create_queue()
    for k in range(3):
        queue.send_message(f"message {k}")
    received = list(queue.receive_messages(max_messages=10))
    assert sorted(m.content for m in received) == ["message 0", "message 1", "message 2"]
    for message in received:
        queue.delete_message(message)
    assert list(queue.peek_messages(max_messages=10)) == []
    queue.delete_queue()


def test_32_threads_of_20_point_reads_all_correct(account):
    service = account.table_service()
    table_name = name("leanmany")
    service.create_table(table_name)
    table = service.get_table_client(table_name)
    submit_batch(table, [("create", {"PartitionKey": "p", "RowKey": f"r{k:02d}", "n": k * 7}) for k in range(20)])
    transport = account._transport
    opened_before = transport.connections_opened
    start = threading.Barrier(32)

    def reads(thread: int) -> list[int]:
        start.wait(timeout=WAIT)  # all 32 at once
        values = []
        for k in range(20):
            row = (thread + k) % 20
            entity, etag = read_entity(table, "p", f"r{row:02d}")
            assert etag and entity["RowKey"] == f"r{row:02d}"
            values.append(entity["n"])
        return values

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(reads, range(32)))
    assert results == [[((thread + k) % 20) * 7 for k in range(20)] for thread in range(32)]
    opened = transport.connections_opened - opened_before
    assert 1 <= opened < 32 * 20  # connections were reused (at most one per thread at a time, plus the dropped)
    assert transport.idle_connections() <= transport.max_idle_per_host


# -- which transport StorageAccount builds -------------------------------------------------------
def test_the_lean_transport_is_the_default_and_requests_is_chosen_by_setting_or_proxy(no_proxy, monkeypatch):
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    assert isinstance(StorageAccount.from_settings(env)._transport, LeanTransport)
    assert isinstance(StorageAccount.from_settings({**env, "FRAUD_STORAGE_TRANSPORT": "lean"})._transport, LeanTransport)
    assert isinstance(StorageAccount.from_settings({**env, "FRAUD_STORAGE_TRANSPORT": "Requests"})._transport,
                      RequestsTransport)
    for variable in ("HTTPS_PROXY", "http_proxy", "All_Proxy"):
        with monkeypatch.context() as proxied:
            proxied.setenv(variable, "http://127.0.0.1:3128")
            account = StorageAccount.from_settings(env)
            assert account.transport_kind == "requests"
            assert isinstance(account._transport, RequestsTransport)
            assert account._transport.session.trust_env  # requests reads the proxy from the environment

    wrapped = []
    monkeypatch.setattr(storage_account, "transport_factory", lambda inner: wrapped.append(inner) or ("wrapped", inner))
    assert StorageAccount.from_settings(env)._transport == ("wrapped", wrapped[0])
    assert isinstance(wrapped[0], LeanTransport)
    assert StorageAccount.from_settings({**env, "FRAUD_STORAGE_TRANSPORT": "requests"})._transport[0] == "wrapped"
    assert isinstance(wrapped[1], RequestsTransport)


def test_an_unknown_transport_is_refused_at_startup(no_proxy):
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "FRAUD_STORAGE_TRANSPORT": "urllib3"}
    with pytest.raises(ValueError, match="FRAUD_STORAGE_TRANSPORT must be one of lean, requests, not 'urllib3'"):
        StorageAccount.from_settings(env)
    with pytest.raises(ValueError, match="FRAUD_STORAGE_TRANSPORT"):
        FraudConfig.from_env(env)
    assert FraudConfig.from_env({"FRAUD_STORAGE_TRANSPORT": "REQUESTS"}).storage_transport == "requests"
    with pytest.raises(ValueError):
        StorageAccount(connection_string="x", transport="urllib3")


# -- local servers on real sockets: keep-alive, the dropped connection, errors -------------------
class Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that counts the connections it accepted and closed, and keeps the
    requests' bodies; ``behaviour`` says what the handler does."""

    daemon_threads = True

    def __init__(self, behaviour: str, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.behaviour = behaviour
        self.changed = threading.Condition()
        self.accepted = 0
        self.closed = 0
        self.bodies: list[bytes] = []
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_port}"

    def process_request(self, request, client_address) -> None:
        with self.changed:
            self.accepted += 1
            self.changed.notify_all()
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        super().shutdown_request(request)
        with self.changed:
            self.closed += 1
            self.changed.notify_all()

    def wait_closed(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.closed >= count, timeout=WAIT)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless a response says otherwise
    server: Server

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                chunk = self.rfile.read(size + 2)[:size]
                if not size:
                    return data
                data += chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.do_POST()

    def do_PUT(self) -> None:
        self.do_POST()

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "12345")  # the length a GET would have: no body follows
        self.end_headers()

    def do_POST(self) -> None:
        body = self._body()
        with self.server.changed:
            self.server.bodies.append(body)
        behaviour = self.server.behaviour
        if behaviour == "no answer":
            self.close_connection = True  # read the request, then close without a response
            return
        if behaviour == "reset mid-body":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()  # with SO_LINGER 0: a reset, 99,000 bytes short
            self.close_connection = True
            return
        if self.path == "/raw-headers":  # as a Table $batch reply starts, plus a repeated and a folded header
            self.wfile.write(b"HTTP/1.1 202 Accepted\r\nContent-Type: multipart/mixed; boundary=batchresponse_7f3a\r\n"
                             b"X-Twice: one\r\nX-Twice: two\r\nX-Folded: first\r\n  second\r\n"
                             b"Content-Length: 2\r\n\r\nok")
            return
        if self.path == "/chunked":  # as Azurite answers: the body in chunks, with an extension and a trailer
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (b"echo ", body[:3], body[3:]):
                if part:
                    self.wfile.write(b"%x;ext=1\r\n%b\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
            return
        if self.path == "/no-content":
            self.send_response(204)
            self.end_headers()
            return
        if self.path == "/gzip":
            self._reply(200, gzip.compress(b"zipped " * 50000), {"Content-Encoding": "gzip"})
        elif self.path == "/same":
            self._reply(200, body, {"Content-Type": "application/json"})
        elif self.path == "/big":
            self._reply(200, bytes(range(256)) * 8192)  # 2 MiB
        elif behaviour == "connection close":
            self._reply(200, b"bye " + body, {"Connection": "close"})  # said: the client must not reuse it
        else:
            self._reply(200, b"echo " + body)
        if behaviour == "close after first":
            self.close_connection = True  # closes without saying so, as a server drops an idle connection


@pytest.fixture
def server(request):
    started = Server(request.param)
    yield started
    started.stop()


@pytest.mark.parametrize("server", ["keep alive"], indirect=True)
def test_rest_and_legacy_requests_streamed_and_not_on_one_kept_alive_connection(server):
    transport = LeanTransport()
    response = transport.send(HttpRequest("POST", server.url + "/a", content=b"one"))
    assert isinstance(response, LeanRestResponse)
    assert (response.status_code, response.content, response.headers["content-length"]) == (200, b"echo one", "8")
    legacy = transport.send(LegacyHttpRequest("POST", server.url + "/b", data=b"two"))
    assert isinstance(legacy, LeanLegacyResponse)
    assert (legacy.status_code, legacy.body(), legacy.text()) == (200, b"echo two", "echo two")

    streamed = transport.send(HttpRequest("GET", server.url + "/big"), stream=True)
    assert transport.idle_connections() == 0  # the body is still on the connection
    chunks = list(streamed.iter_bytes())
    assert b"".join(chunks) == bytes(range(256)) * 8192 and len(chunks) > 1
    assert transport.idle_connections() == 1  # read to the end: back in the pool
    legacy_streamed = transport.send(LegacyHttpRequest("GET", server.url + "/gzip"), stream=True)
    assert b"".join(legacy_streamed.stream_download(None)) == b"zipped " * 50000  # decoded
    raw = transport.send(HttpRequest("GET", server.url + "/gzip"), stream=True)
    assert gzip.decompress(b"".join(raw.iter_raw())) == b"zipped " * 50000
    assert transport.send(HttpRequest("GET", server.url + "/gzip")).content == b"zipped " * 50000

    unread = transport.send(HttpRequest("GET", server.url + "/big"), stream=True)
    unread.close()  # a body not read: its connection is closed, not pooled
    assert transport.idle_connections() == 0
    assert transport.send(HttpRequest("POST", server.url + "/same", json={"k": "ñ"})).json() == {"k": "ñ"}
    assert transport.connections_opened == 2 and server.accepted == 2
    transport.close()
    assert transport.idle_connections() == 0
    assert transport.send(HttpRequest("POST", server.url + "/d", content=b"after close")).content == b"echo after close"


@pytest.mark.parametrize("server", ["close after first"], indirect=True)
def test_a_post_on_a_pooled_connection_the_server_dropped_is_sent_again_on_a_fresh_one(server):
    transport = LeanTransport()
    assert transport.send(HttpRequest("POST", server.url + "/x", content=b"first")).content == b"echo first"
    assert transport.idle_connections() == 1  # the server did not say it would close
    server.wait_closed(1)  # ... but it did

    response = transport.send(HttpRequest("POST", server.url + "/x", content=b"second"))
    assert (response.status_code, response.content) == (200, b"echo second")  # by the transport's retry
    assert server.accepted == 2 and transport.connections_opened == 2  # exactly one extra connection
    assert server.bodies == [b"first", b"second"]  # each applied once


@pytest.mark.parametrize("server", ["close after first"], indirect=True)
def test_a_body_that_cannot_be_rewound_is_not_sent_twice(server):
    transport = LeanTransport()
    transport.send(HttpRequest("POST", server.url + "/x", content=b"first"))
    server.wait_closed(1)
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        transport.send(HttpRequest("POST", server.url + "/x", content=(part for part in [b"gene", b"rator"])))
    assert server.accepted == 1 and server.bodies == [b"first"]


@pytest.mark.parametrize("server", ["no answer"], indirect=True)
def test_a_failure_on_a_fresh_connection_is_left_to_the_sdk_retry_policy(server):
    transport = LeanTransport()
    with pytest.raises(ServiceResponseError):
        transport.send(HttpRequest("POST", server.url + "/x", content=b"once"))
    assert server.accepted == 1 and server.bodies == [b"once"]


@pytest.mark.parametrize("server", ["reset mid-body"], indirect=True)
def test_a_reset_in_the_middle_of_the_body_is_a_service_response_error(server):
    transport = LeanTransport()
    with pytest.raises(ServiceResponseError):
        transport.send(HttpRequest("GET", server.url + "/x"))
    streamed = transport.send(HttpRequest("GET", server.url + "/x"), stream=True)
    assert streamed.status_code == 200
    with pytest.raises(ServiceResponseError):
        streamed.read()
    assert transport.idle_connections() == 0


def test_a_refused_connection_is_a_service_request_error():
    transport = LeanTransport(connection_timeout=5)
    with pytest.raises(ServiceRequestError) as refused:
        transport.send(HttpRequest("GET", f"http://127.0.0.1:{free_port()}/x"))
    assert not isinstance(refused.value, ServiceResponseError)
    assert isinstance(refused.value.inner_exception, ConnectionRefusedError)


@pytest.mark.parametrize("server", ["connection close"], indirect=True)
def test_a_connection_close_response_does_not_go_back_to_the_pool(server):
    transport = LeanTransport()
    assert transport.send(HttpRequest("POST", server.url + "/x", content=b"1")).content == b"bye 1"
    assert transport.idle_connections() == 0
    assert transport.send(HttpRequest("POST", server.url + "/x", content=b"2")).content == b"bye 2"
    assert transport.connections_opened == 2 and server.accepted == 2


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """A keep-alive server on https with a self-signed certificate for 127.0.0.1 (its own CA)."""
    from datetime import datetime, timedelta, timezone
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lean transport test")])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server = Server("keep alive", tls=context)
    server.ca_file = str(folder / "cert.pem")
    yield server
    server.stop()


def test_https_verified_against_the_given_ca_refused_by_the_default_context_or_unverified_on_request(tls_server):
    transport = LeanTransport(connection_verify=tls_server.ca_file)
    assert transport.send(HttpRequest("POST", tls_server.url + "/x", content=b"tls 1")).content == b"echo tls 1"
    assert transport.send(HttpRequest("POST", tls_server.url + "/x", content=b"tls 2")).content == b"echo tls 2"
    assert transport.connections_opened == 1  # kept alive over TLS

    with pytest.raises(ServiceRequestError) as untrusted:  # the default context: the system's CAs only
        LeanTransport().send(HttpRequest("GET", tls_server.url + "/x"))
    assert isinstance(untrusted.value.inner_exception, ssl.SSLCertVerificationError)
    unverified = LeanTransport().send(HttpRequest("POST", tls_server.url + "/x", content=b"any"), connection_verify=False)
    assert unverified.content == b"echo any"


@pytest.mark.parametrize("server", ["keep alive"], indirect=True)
def test_response_headers_are_read_as_sent_without_parsing_a_multipart_body(server):
    """The transport reads header lines itself (http.client's email parser would parse a
    multipart reply's empty body and compile a pattern for each new boundary)."""
    transport = LeanTransport()
    for _ in range(2):  # the second on the kept-alive connection: the body was read to its end
        response = transport.send(HttpRequest("GET", f"{server.url}/raw-headers"))
        assert response.status_code == 202 and response.read() == b"ok"
        assert response.headers["content-type"] == "multipart/mixed; boundary=batchresponse_7f3a"
        assert response.headers["X-Folded"] == "first second"
        assert response.headers["x-twice"] == "one, two"
    assert server.accepted == 1


@pytest.mark.parametrize("server", ["keep alive"], indirect=True)
def test_chunked_replies_chunked_and_file_bodies_head_and_204_on_one_kept_alive_connection(server, tmp_path):
    """The transport's own HTTP/1.1 reader and writer: every kind of body, each request on the
    connection the one before left ready (one connection for all of them)."""
    transport = LeanTransport()
    assert transport.send(HttpRequest("POST", server.url + "/chunked", content=b"abcdefgh")).content == b"echo abcdefgh"
    streamed = transport.send(HttpRequest("POST", server.url + "/chunked", content=b"xyz12"), stream=True)
    assert b"".join(streamed.iter_bytes()) == b"echo xyz12"
    generated = transport.send(HttpRequest("POST", server.url + "/same", content=(p for p in [b"gene", b"rated"])))
    assert generated.content == b"generated"  # sent chunked: no length was given
    upload = tmp_path / "upload.bin"
    upload.write_bytes(bytes(range(256)) * 1000)
    with upload.open("rb") as handle:
        sent = transport.send(HttpRequest("PUT", server.url + "/same", content=handle,
                                          headers={"Content-Length": str(256 * 1000)}))
    assert sent.content == bytes(range(256)) * 1000
    head = transport.send(HttpRequest("HEAD", server.url + "/x"))
    assert (head.status_code, head.headers["Content-Length"], head.content) == (200, "12345", b"")
    empty = transport.send(HttpRequest("GET", server.url + "/no-content"), stream=True)
    assert (empty.status_code, empty.read()) == (204, b"")
    assert transport.send(HttpRequest("POST", server.url + "/x", content=b"last")).content == b"echo last"
    assert server.accepted == 1 and transport.connections_opened == 1 and transport.idle_connections() == 1
    assert server.bodies[:3] == [b"abcdefgh", b"xyz12", b"generated"]


@pytest.mark.parametrize("server", ["keep alive"], indirect=True)
def test_a_header_or_target_that_would_split_the_request_is_refused_before_sending(server):
    transport = LeanTransport()
    with pytest.raises(ValueError):
        transport.send(HttpRequest("GET", server.url + "/x", headers={"X-Id": "1\r\nX-Injected: yes"}))
    with pytest.raises(ValueError):
        transport.send(HttpRequest("GET", server.url + "/x", headers={"Bad Name": "1"}))
    with pytest.raises(http.client.InvalidURL):
        transport.send(HttpRequest("GET", server.url + "/a b"))
    assert server.bodies == []  # nothing reached the server
