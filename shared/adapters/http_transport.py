"""A lean HTTP/1.1 transport for the Azure SDK clients, on sockets of the standard library.

azure-core's default ``RequestsTransport`` goes through requests and urllib3; per storage
request that is most of the app's CPU (issue #17: ~0.6-0.9 ms a request against ~0.1 ms on
``http.client``). ``LeanTransport`` does only what a transport does: it sends the request that
the SDK's pipeline has prepared (signed by its credential policy, with its retry, logging and
user-agent policies all above it, unchanged) over HTTP/1.1 keep-alive connections, and hands
back the response in the types azure-core's own transports use:

* an ``azure.core.rest.HttpRequest`` gets an ``azure.core.rest.HttpResponse`` (built on
  azure-core's ``HttpResponseImpl``, as ``RequestsTransport`` does), a legacy
  ``azure.core.pipeline.transport.HttpRequest`` a legacy ``HttpResponse``;
* ``stream=True`` leaves the body on the socket: ``iter_bytes`` / ``stream_download`` read it
  block by block (large blob downloads), ``read`` at once; otherwise it is read before
  ``send`` returns. gzip and deflate bodies are decoded unless ``decompress=False``
  (``iter_raw``), as requests does;
* ``connection_timeout`` (connect) and ``read_timeout`` (each socket read) per call or from the
  transport's ``connection_config``; for https ``connection_verify`` (True: the default SSL
  context, i.e. the system's CAs; False: no verification; a path: that CA file or directory)
  and ``connection_cert`` (a PEM with the key, or a (cert, key) pair).

``http.client`` only connects (TLS included). The request is written here: its head and a
bytes body in one ``sendall``, with the checks and the headers ``http.client`` would apply (an
ASCII target without control characters, header names that are tokens, no CR or LF in a
value; Host, ``Accept-Encoding: identity``, Content-Length; a file or iterable body in blocks,
chunked when no length is given). The response is read here too, from one buffered reader
kept for the connection's life (``_Reply``: status line, headers as received, the body by
Content-Length, by chunks, or to the close). ``http.client``'s request and response objects
cost about 0.2 ms of CPU per request on this path, as much as the rest of the transport: a new
file object per response, a regular expression per header, and its ``email`` parser, which
parses every Table ``$batch`` reply's multipart body and compiles a regular expression for its
new boundary (issue #17).

Connections: a bounded stack of idle connections per (scheme, host, port) (and TLS settings),
shared by every thread; a connection goes back only once its response was read to the end and
the server did not say ``Connection: close``. Anything else (a body not read, an error) closes it.

Errors, as the SDK's retry policies expect them: a failure to connect, or to send the request,
is ``ServiceRequestError`` (``ServiceRequestTimeoutError`` on a timeout); a failure while
waiting for or reading the response is ``ServiceResponseError`` (``ServiceResponseTimeoutError``).

The dropped keep-alive connection: a server may close a connection that has been idle in the
pool. The next request sent on it then fails before any byte of the response arrives
(``RemoteDisconnected``, a reset, a broken pipe; on TLS an EOF). Such a request is sent again
at once, once, on a fresh connection, whatever its method. That is safe here because the
failure is the idle connection's, not the request's: the server closed it, so the request did
not reach a live connection (at worst it arrived as the server closed, and was not answered);
and the app's hot-path writes are conditional (If-Match) or create-only (insert, entity-group
transactions of creates and conditional updates), so even a repeat that did reach the service
could not apply twice: it would fail with 409/412, which the callers already handle. azure-core's
retry policy does not retry a POST that failed this way (its method allowlist), which is how the
load benchmark saw a 503 for one. A failure on a fresh connection is not retried here: the SDK's
retry policy decides, as it does for any transport. A body that cannot be rewound (a generator,
an unseekable stream) is not sent twice either.

Proxies are not supported: ``StorageAccount`` keeps azure-core's ``RequestsTransport`` when a
proxy is configured (shared/adapters/storage_account.py).
"""
from __future__ import annotations

import http.client
import os
import re
import ssl
import threading
import zlib
from typing import Any, Callable, Iterator, Optional
from urllib.parse import urlencode, urlsplit

from azure.core.configuration import ConnectionConfiguration
from azure.core.exceptions import (
    DecodeError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import HttpResponse as LegacyHttpResponse
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest as RestHttpRequest
# azure-core's own base of its transports' rest responses (RequestsTransport's among them): the
# rest HttpResponse contract and its backward-compatible attributes (body, stream_download, ...).
# Pinned with azure-core in requirements.txt.
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import case_insensitive_dict

DEFAULT_MAX_IDLE_PER_HOST = 32   # the app fans out up to 32 requests at once
DEFAULT_BLOCK_SIZE = 64 * 1024   # streamed-download chunks, and request-body blocks from a file
_DEFAULT_PORTS = {"http": 80, "https": 443}
# How a connection that the server closed while it sat idle fails on its next request.
_DROPPED = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError,  # RemoteDisconnected is a reset
            ssl.SSLEOFError, ssl.SSLZeroReturnError)


class _NoStatusLine(Exception):
    """The connection failed before the response's status line was read (``cause``)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


_MAX_LINE = 65536      # http.client's limits: a status or header line, and the header count
_MAX_HEADERS = 100
_ILLEGAL_TARGET = re.compile(r"[\x00-\x20\x7f]")    # as http.client refuses in a request target
_ILLEGAL_NAME = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")  # a header name is an RFC 9110 token
_METHODS_WITH_BODY = frozenset({"PATCH", "POST", "PUT"})  # Content-Length: 0 without a body, as http.client


def _host_header(host: str, port: int, scheme: str) -> str:
    """The Host header as ``http.client`` writes it (the port only when not the scheme's)."""
    name = f"[{host}]" if ":" in host else host
    return name if port == _DEFAULT_PORTS[scheme] else f"{name}:{port}"


def _request_head(method: str, target: str, host_header: str, headers: Any,
                  length: Optional[int], chunked: bool) -> bytes:
    """The request line and headers, checked as ``http.client`` checks them (an ASCII target
    without control characters, names that are tokens, no CR or LF in a value), with the
    headers ``http.client`` adds when they are missing: Host, ``Accept-Encoding: identity``,
    and Content-Length (``length``) or ``Transfer-Encoding: chunked``."""
    if not target.isascii() or _ILLEGAL_TARGET.search(target):
        raise http.client.InvalidURL(f"URL can't contain control characters. {target!r}")
    lines = [f"{method} {target} HTTP/1.1"]
    seen = set()
    for name, value in headers.items():
        value = str(value)
        if not name or _ILLEGAL_NAME.search(name):
            raise ValueError(f"Invalid header name {name!r}")
        if "\r" in value or "\n" in value:
            raise ValueError(f"Invalid header value {value!r}")
        lines.append(f"{name}: {value}")
        seen.add(name.lower())
    if "host" not in seen:
        lines.append(f"Host: {host_header}")
    if "accept-encoding" not in seen:
        lines.append("Accept-Encoding: identity")
    if "content-length" not in seen and "transfer-encoding" not in seen:
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        elif length is not None:
            lines.append(f"Content-Length: {length}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def _body_blocks(body: Any) -> Iterator[bytes]:
    """A file-like or iterable body in blocks (str blocks encoded as UTF-8)."""
    if hasattr(body, "read"):
        while True:
            block = body.read(DEFAULT_BLOCK_SIZE)
            if not block:
                return
            yield block.encode("utf-8") if isinstance(block, str) else block
    else:
        for block in body:
            yield block.encode("utf-8") if isinstance(block, str) else bytes(block)


def _send_request(sock: Any, method: str, target: str, host_header: str, body: Any, headers: Any) -> None:
    """One request on ``sock``. A bytes body (or none) goes in one ``sendall`` with its head
    (``http.client`` sends them in one too, after more work per header); a file or an iterable
    in blocks after the head, chunked unless the headers give its length."""
    if body is None or isinstance(body, (bytes, bytearray, memoryview)):
        length = len(body) if body is not None else (0 if method in _METHODS_WITH_BODY else None)
        head = _request_head(method, target, host_header, headers, length, chunked=False)
        sock.sendall(head + bytes(body) if body else head)
        return
    chunked = not any(name.lower() in ("content-length", "transfer-encoding") for name in headers)
    sock.sendall(_request_head(method, target, host_header, headers, None, chunked=chunked))
    for block in _body_blocks(body):
        if block:
            sock.sendall(b"%x\r\n%b\r\n" % (len(block), block) if chunked else block)
    if chunked:
        sock.sendall(b"0\r\n\r\n")


class _Reply:
    """One response read from the connection's own buffered reader (kept for the connection's
    life: no new file object per response): status line, headers, then the body by
    Content-Length, chunks, or to the connection's close. The small part of
    ``http.client.HTTPResponse`` that ``_Wire`` uses, with its rules (1xx skipped; no body for
    HEAD, 1xx, 204, 304; a short body is ``IncompleteRead``)."""

    __slots__ = ("fp", "status", "reason", "headers", "length", "chunked", "chunk_left", "will_close", "_done")

    def __init__(self, fp: Any, method: str) -> None:
        self.fp = fp
        self.chunk_left: Optional[int] = None
        self._done = False
        try:
            while True:
                version, status, reason = self._status_line()
                if status >= 200 or status < 100:
                    break
                self._header_lines()  # an interim response (100 Continue): its headers, then the next
        except _DROPPED as exc:
            raise _NoStatusLine(exc) from exc
        self.status, self.reason = status, reason
        self.headers = self._header_lines()
        fields = {name.lower(): value for name, value in self.headers}
        self.chunked = fields.get("transfer-encoding", "").lower() == "chunked"
        connection = fields.get("connection", "").lower()
        self.will_close = "close" in connection or (version != "HTTP/1.1" and "keep-alive" not in connection)
        self.length: Optional[int] = None
        if not self.chunked and "content-length" in fields:
            try:
                self.length = int(fields["content-length"])
            except ValueError:
                self.length = None
            if self.length is not None and self.length < 0:
                self.length = None
        if status in (204, 304) or 100 <= status < 200 or method == "HEAD":
            self.length = 0
            self.chunked = False
        if not self.chunked and self.length is None:
            self.will_close = True  # the body ends when the server closes
        if self.length == 0:
            self._done = True

    def _status_line(self) -> tuple[str, int, str]:
        line = self.fp.readline(_MAX_LINE + 1)
        if not line:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("status line")
        text = line.decode("iso-8859-1")
        version, _, rest = text.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1."):
            raise http.client.BadStatusLine(text)
        try:
            status = int(code)
        except ValueError:
            raise http.client.BadStatusLine(text) from None
        if not 100 <= status <= 999:
            raise http.client.BadStatusLine(text)
        return version, status, reason.strip()

    def _header_lines(self) -> list[tuple[str, str]]:
        """The header lines as received (values stripped); folded lines joined with a space."""
        headers: list[tuple[str, str]] = []
        while True:
            raw = self.fp.readline(_MAX_LINE + 1)
            if len(raw) > _MAX_LINE:
                raise http.client.LineTooLong("header line")
            if raw in (b"\r\n", b"\n", b""):
                return headers
            if len(headers) >= _MAX_HEADERS:
                raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
            line = raw.decode("iso-8859-1").rstrip("\r\n")
            if line[:1] in (" ", "\t") and headers:
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
                continue
            name, colon, value = line.partition(":")
            if colon:
                headers.append((name.strip(), value.strip()))

    def getheaders(self) -> list[tuple[str, str]]:
        return self.headers

    def isclosed(self) -> bool:
        return self._done

    def close(self) -> None:
        self._done = True

    def read(self, amount: Optional[int] = None) -> bytes:
        """Up to ``amount`` bytes of the body (all that is left when None); b"" at its end."""
        if self._done:
            return b""
        if self.chunked:
            return self._read_chunked(amount)
        if self.length is None:  # to the close
            data = self.fp.read() if amount is None else self.fp.read1(amount)
            if amount is None or not data:
                self._done = True
            return data
        want = self.length if amount is None else min(amount, self.length)
        data = self.fp.read(want)
        if len(data) < want:
            self._done = True
            raise http.client.IncompleteRead(data, self.length - len(data))
        self.length -= len(data)
        if self.length == 0:
            self._done = True
        return data

    def _read_chunked(self, amount: Optional[int]) -> bytes:
        """All that is left (``amount`` None), or at most ``amount`` bytes of one chunk."""
        parts: list[bytes] = []
        while not self._done:
            if self.chunk_left is None:  # at a chunk-size line
                size_line = self._line()
                try:
                    size = int(size_line.split(b";", 1)[0], 16)
                except ValueError:
                    self._done = True
                    raise http.client.IncompleteRead(b"".join(parts)) from None
                if size == 0:  # the last chunk: trailers up to the blank line
                    while self._line() not in (b"\r\n", b"\n", b""):
                        pass
                    self._done = True
                    break
                self.chunk_left = size
            take = self.chunk_left if amount is None else min(amount, self.chunk_left)
            data = self.fp.read(take)
            if len(data) < take:
                self._done = True
                raise http.client.IncompleteRead(b"".join(parts) + data)
            parts.append(data)
            self.chunk_left -= take
            if self.chunk_left == 0:
                self._line()  # the CRLF after the chunk's data
                self.chunk_left = None
            if amount is not None:
                break
        return b"".join(parts)

    def _line(self) -> bytes:
        line = self.fp.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("chunk size")
        return line


class _ConnectionReader:
    """What the lean connections add to ``http.client``'s (which only connect them, TLS
    included): the read timeout set on the socket, and one buffered reader for the
    connection's life (closed first on close: the socket stays open while a reader is)."""

    read_timeout: Optional[float] = None
    reader: Any = None

    def buffered_reader(self) -> Any:
        if self.reader is None:
            self.reader = self.sock.makefile("rb", buffering=DEFAULT_BLOCK_SIZE)
        return self.reader

    def close(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            try:
                reader.close()
            except OSError:
                pass
        super().close()  # type: ignore[misc]


class _HTTPConnection(_ConnectionReader, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_ConnectionReader, http.client.HTTPSConnection):
    pass


class _SendFailed(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _request_error(exc: BaseException) -> ServiceRequestError:
    if isinstance(exc, TimeoutError):
        return ServiceRequestTimeoutError(exc, error=exc)
    return ServiceRequestError(exc, error=exc)


def _response_error(exc: BaseException) -> ServiceResponseError:
    if isinstance(exc, TimeoutError):
        return ServiceResponseTimeoutError(exc, error=exc)
    return ServiceResponseError(exc, error=exc)


def _decoder(content_encoding: Optional[str]) -> Any:
    """A zlib decompressor for a gzip or deflate body; None for any other encoding (left as is)."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Deflate()
    return None


class _Deflate:
    """'deflate' is zlib-wrapped by the standard, raw deflate by some servers: try one, then the other."""

    def __init__(self) -> None:
        self._first = True
        self._zlib = zlib.decompressobj()

    def decompress(self, data: bytes) -> bytes:
        if not self._first:
            return self._zlib.decompress(data)
        self._first = False
        try:
            return self._zlib.decompress(data)
        except zlib.error:
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._zlib.decompress(data)

    def flush(self) -> bytes:
        return self._zlib.flush()


def _decoded(decoder: Any, data: bytes) -> bytes:
    try:
        return decoder.decompress(data) + decoder.flush()
    except zlib.error as exc:
        raise DecodeError(f"could not decode the response body: {exc}", error=exc) from exc


class _Wire:
    """One response on its connection: reads the body, and gives the connection back to the pool
    when the body was read to the end (``close`` before that closes the connection)."""

    __slots__ = ("response", "connection", "release", "status", "reason", "headers", "done")

    def __init__(self, response: "_Reply", connection: Any, release: Callable[[Any], None]) -> None:
        self.response = response
        self.connection = connection
        self.release = release  # takes the connection back (the transport's pool)
        self.status = response.status
        self.reason = response.reason
        headers = case_insensitive_dict()
        for name, value in response.getheaders():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value  # as requests joins them
        self.headers = headers
        self.done = False

    def read(self, amount: Optional[int] = None) -> bytes:
        """Up to ``amount`` bytes of the body (all of it when None); b"" at its end."""
        if self.done:
            return b""
        try:
            data = self.response.read(amount)
        except Exception as exc:
            self._discard()
            if isinstance(exc, (OSError, http.client.HTTPException, ValueError)):
                raise _response_error(exc) from exc
            raise
        if amount is None or not data or self.response.isclosed():
            self._finish()
        return data

    def read_all(self, decompress: bool = True) -> bytes:
        data = self.read()
        decoder = _decoder(self.headers.get("Content-Encoding")) if decompress and data else None
        return _decoded(decoder, data) if decoder is not None else data

    def _finish(self) -> None:
        """The body was read to its end: the connection is reusable unless the server closes it."""
        if self.done:
            return
        self.done = True
        if self.response.isclosed() and not self.response.will_close:
            self.release(self.connection)
        else:
            self.connection.close()

    def _discard(self) -> None:
        if not self.done:
            self.done = True
            self.response.close()
            self.connection.close()

    def close(self) -> None:
        """Done with the response: a body not read to its end costs its connection."""
        self._discard()


class _StreamDownload:
    """The body read block by block (``block_size``), decoded unless ``decompress=False``. The same
    generator as azure-core's transports give: ``stream_download``, ``iter_bytes``, ``iter_raw``."""

    def __init__(self, pipeline: Any, response: Any, *, decompress: bool = True) -> None:
        self.pipeline = pipeline
        self.response = response
        self.wire: _Wire = response.internal_response
        self.block_size = response.block_size
        self.decoder = _decoder(self.wire.headers.get("Content-Encoding")) if decompress else None
        self.content_length = int(self.wire.headers.get("Content-Length", 0))

    def __len__(self) -> int:
        return self.content_length

    def __iter__(self) -> "_StreamDownload":
        return self

    def __next__(self) -> bytes:
        while True:
            chunk = self.wire.read(self.block_size)
            if not chunk:
                decoder, self.decoder = self.decoder, None
                tail = self._decode(decoder.flush) if decoder is not None else b""
                if tail:
                    return tail
                raise StopIteration
            if self.decoder is None:
                return chunk
            chunk = self._decode(self.decoder.decompress, chunk)
            if chunk:
                return chunk

    def _decode(self, step: Callable, *args: bytes) -> bytes:
        try:
            return step(*args)
        except zlib.error as exc:
            self.wire.close()
            raise DecodeError(f"could not decode the response body: {exc}", error=exc) from exc

    next = __next__


class LeanRestResponse(HttpResponseImpl):
    """The ``azure.core.rest.HttpResponse`` of a rest request."""

    def __init__(self, *, request: Any, wire: _Wire, block_size: int, content: Optional[bytes] = None) -> None:
        super().__init__(request=request, internal_response=wire, block_size=block_size, status_code=wire.status,
                         reason=wire.reason, headers=wire.headers, content_type=wire.headers.get("Content-Type"),
                         stream_download_generator=_StreamDownload)
        if content is not None:  # read in send (not streamed): as azure-core's read() then close()
            self._content = content
            self._is_stream_consumed = True
            self._is_closed = True

    def read(self) -> bytes:
        # One read of the whole body rather than HttpResponseImpl's join of block-sized chunks.
        if self._content is None:
            self._stream_download_check()
            self._content = self._internal_response.read_all(decompress=True)
        self._set_read_checks()
        return self._content


class LeanLegacyResponse(LegacyHttpResponse):
    """The legacy ``azure.core.pipeline.transport.HttpResponse`` of a legacy request."""

    def __init__(self, request: Any, wire: _Wire, block_size: int, content: Optional[bytes] = None) -> None:
        super().__init__(request, wire, block_size=block_size)
        self.status_code = wire.status
        self.headers = wire.headers
        self.reason = wire.reason
        self.content_type = wire.headers.get("Content-Type")
        self._body = content

    def body(self) -> bytes:
        if self._body is None:
            self._body = self.internal_response.read_all(decompress=True)
        return self._body

    def stream_download(self, pipeline: Any, **kwargs: Any) -> Iterator[bytes]:
        return _StreamDownload(pipeline, self, **kwargs)


def _request_body(request: Any) -> tuple[Any, Callable[[], bool], Optional[str]]:
    """(the body as http.client sends it, a rewind for a second send (False: cannot),
    a Content-Type to add when the body is a form)."""
    if getattr(request, "files", None):
        raise ValueError("LeanTransport does not send multipart/form-data files (no storage SDK call does); "
                         "set FRAUD_STORAGE_TRANSPORT=requests for such a client")
    data = request.data
    if data is None or isinstance(data, (bytes, bytearray, memoryview)):
        return data, _always, None
    if isinstance(data, str):
        return data.encode("utf-8"), _always, None
    if isinstance(data, dict):
        return urlencode(data, doseq=True).encode("ascii"), _always, "application/x-www-form-urlencoded"
    if hasattr(data, "read"):
        try:
            position = data.tell()
        except (AttributeError, OSError, ValueError):
            return data, _never, None

        def rewind() -> bool:
            try:
                data.seek(position)
                return True
            except (AttributeError, OSError, ValueError):
                return False
        return data, rewind, None
    if isinstance(data, (list, tuple)):
        return data, _always, None
    return data, _never, None  # a generator: read once


def _always() -> bool:
    return True


def _never() -> bool:
    return False


class LeanTransport(HttpTransport):
    """An ``HttpTransport`` on sockets with a thread-safe pool of keep-alive HTTP/1.1 connections.

    :keyword connection_timeout, read_timeout, connection_verify, connection_cert,
        connection_data_block_size: defaults of every request (``ConnectionConfiguration``);
        the data block size defaults to 64 KiB here.
    :keyword int max_idle_per_host: idle connections kept per (scheme, host, port).
    """

    def __init__(self, *, max_idle_per_host: int = DEFAULT_MAX_IDLE_PER_HOST, **kwargs: Any) -> None:
        kwargs.setdefault("connection_data_block_size", DEFAULT_BLOCK_SIZE)
        # Read by azure-core's retry policy too (it lowers connection_timeout to an operation's timeout).
        self.connection_config = ConnectionConfiguration(**kwargs)
        self.max_idle_per_host = max_idle_per_host
        self._idle: dict[tuple, list[Any]] = {}
        self._lock = threading.Lock()
        self._ssl_contexts: dict[tuple, ssl.SSLContext] = {}
        self.connections_opened = 0  # fresh connections so far (for tests and measurements)

    # -- the HttpTransport contract ---------------------------------------------------------
    def open(self) -> None:
        """Nothing to open: connections are made as requests need them."""

    def close(self) -> None:
        """Close the idle connections. The transport can still send (one transport serves every
        client of a storage account, and one client's ``close`` must not break the others)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for stack in idle.values():
            for connection in stack:
                connection.close()

    def __enter__(self) -> "LeanTransport":
        self.open()
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    def send(self, request: Any, **kwargs: Any) -> Any:
        """Send ``request``; a rest response for a rest request, a legacy one otherwise."""
        stream = bool(kwargs.pop("stream", False))
        config = self.connection_config
        connect_timeout = kwargs.pop("connection_timeout", config.timeout)
        if isinstance(connect_timeout, tuple):  # azure-core's deprecated (connect, read) form
            if "read_timeout" in kwargs:
                raise ValueError("Cannot set tuple connection_timeout and read_timeout together")
            connect_timeout, read_timeout = connect_timeout
        else:
            read_timeout = kwargs.pop("read_timeout", config.read_timeout)
        verify = kwargs.pop("connection_verify", config.verify)
        cert = kwargs.pop("connection_cert", config.cert)
        if kwargs.pop("proxies", None):
            raise ValueError("LeanTransport does not go through proxies: use azure-core's RequestsTransport "
                             "(FRAUD_STORAGE_TRANSPORT=requests, or a proxy variable in the environment)")

        parts = urlsplit(request.url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"LeanTransport sends http and https URLs only, not {request.url!r}")
        host = parts.hostname
        port = parts.port or _DEFAULT_PORTS[scheme]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if isinstance(cert, list):
            cert = tuple(cert)
        key = (scheme, host, port) if scheme == "http" else (scheme, host, port, verify, cert)

        body, rewind, form_type = _request_body(request)
        headers = request.headers
        if form_type and "Content-Type" not in headers:
            headers = {**headers, "Content-Type": form_type}

        wire = self._exchange(key, request.method, target, body, rewind, headers, connect_timeout, read_timeout)
        block_size = config.data_block_size
        content = None
        if not stream:
            content = wire.read_all(decompress=True)
        elif wire.response.length == 0:
            wire.read()  # nothing to stream (HEAD, 204, 304, an empty body): the connection goes back now
        if isinstance(request, RestHttpRequest):
            return LeanRestResponse(request=request, wire=wire, block_size=block_size, content=content)
        return LeanLegacyResponse(request, wire, block_size, content)

    # -- connections ------------------------------------------------------------------------
    def _exchange(self, key: tuple, method: str, target: str, body: Any, rewind: Callable[[], bool],
                  headers: Any, connect_timeout: Any, read_timeout: Any) -> _Wire:
        connection = self._take_idle(key)
        if connection is not None:
            try:
                return self._round_trip(connection, method, target, body, headers, read_timeout)
            except (_SendFailed, _NoStatusLine) as failed:
                connection.close()
                if not (isinstance(failed.cause, _DROPPED) and rewind()):
                    raise (_request_error if isinstance(failed, _SendFailed) else _response_error)(failed.cause) \
                        from failed.cause
                # a dropped idle connection: once more, at once, on a fresh one (module docstring)
            except BaseException:
                connection.close()
                raise
        connection = self._connect(key, connect_timeout)
        try:
            return self._round_trip(connection, method, target, body, headers, read_timeout)
        except (_SendFailed, _NoStatusLine) as failed:
            connection.close()
            raise (_request_error if isinstance(failed, _SendFailed) else _response_error)(failed.cause) \
                from failed.cause
        except BaseException:
            connection.close()
            raise

    def _round_trip(self, connection: Any, method: str, target: str, body: Any, headers: Any,
                    read_timeout: Any) -> _Wire:
        """Send on ``connection`` and read the status line and headers. Raises ``_SendFailed`` or
        ``_NoStatusLine`` (for ``_exchange`` to judge), or ServiceResponseError after the status line."""
        try:
            if connection.read_timeout != read_timeout:
                connection.sock.settimeout(read_timeout)
                connection.read_timeout = read_timeout
            _send_request(connection.sock, method, target, connection.host_header, body, headers)
        except OSError as exc:
            raise _SendFailed(exc) from exc
        try:
            response = _Reply(connection.buffered_reader(), method)
        except _NoStatusLine:
            raise
        except (OSError, http.client.HTTPException) as exc:
            raise _response_error(exc) from exc
        return _Wire(response, connection, self._give_back)

    def _connect(self, key: tuple, connect_timeout: Any) -> Any:
        scheme, host, port = key[:3]
        if scheme == "https":
            connection = _HTTPSConnection(host, port, timeout=connect_timeout, context=self._ssl_context(*key[3:]))
        else:
            connection = _HTTPConnection(host, port, timeout=connect_timeout)
        connection.pool_key = key
        connection.host_header = _host_header(host, port, scheme)
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            raise _request_error(exc) from exc
        with self._lock:
            self.connections_opened += 1
        connection.read_timeout = connect_timeout  # the socket's timeout until a request sets the read timeout
        return connection

    def _take_idle(self, key: tuple) -> Any:
        with self._lock:
            stack = self._idle.get(key)
            return stack.pop() if stack else None

    def _give_back(self, connection: Any) -> None:
        with self._lock:
            stack = self._idle.setdefault(connection.pool_key, [])
            if len(stack) < self.max_idle_per_host:
                stack.append(connection)
                return
        connection.close()

    def idle_connections(self) -> int:
        """Connections in the pool now (for tests)."""
        with self._lock:
            return sum(len(stack) for stack in self._idle.values())

    def _ssl_context(self, verify: Any, cert: Any) -> ssl.SSLContext:
        with self._lock:
            context = self._ssl_contexts.get((verify, cert))
        if context is not None:
            return context
        if verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif isinstance(verify, str):
            context = (ssl.create_default_context(capath=verify) if os.path.isdir(verify)
                       else ssl.create_default_context(cafile=verify))
        else:
            context = ssl.create_default_context()
        if cert:
            if isinstance(cert, (tuple, list)):
                context.load_cert_chain(cert[0], cert[1])
            else:
                context.load_cert_chain(cert)
        with self._lock:
            return self._ssl_contexts.setdefault((verify, cert), context)
