"""HTTP for the live clients: requests with urllib3's Retry (backoff on 5xx and 429, honouring
Retry-After, retrying timeouts and reset connections), a timeout on every call and a User-Agent that
names the tracker.

Every fetch is bounded: a response may not exceed TRACKER_HTTP_MAX_MB after decompression, a source's fetches
share one deadline (TRACKER_SOURCE_DEADLINE seconds, from its first request; a Retry-After or backoff never
sleeps past it), and paged APIs stop at TRACKER_MAX_PAGES. A failure says which it was: the name did not
resolve, the connection was refused, TLS failed, or it timed out. urllib3's retry warnings are not printed:
they are counted per source (retry_note) for the refresh summary."""

from __future__ import annotations

import errno
import logging
import re
import socket
import ssl
import threading
import time
from collections import Counter
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pipelines.base import Payload, SourceError
from tracker.config import USER_AGENT, setting


SECRET_PARAMS = re.compile(r"([?&](?:uid|key|api_key|token)=)[^&]*", re.IGNORECASE)
CHUNK = 64 * 1024


def redact_url(url: str) -> str:
    """API keys (NOMIS uid ...) must not reach run records, logs or error messages."""
    return SECRET_PARAMS.sub(r"\1***", url)


def max_bytes() -> int:
    return int(float(setting("TRACKER_HTTP_MAX_MB")) * 1024 * 1024)


def max_pages() -> int:
    return int(setting("TRACKER_MAX_PAGES"))


def check_page(source: str, page: int, url: str) -> None:
    """Before asking for page `page` (1-based) of a paged API: stop at TRACKER_MAX_PAGES."""
    if page > max_pages():
        raise SourceError(
            f"{source}: {redact_url(url)} still had more pages after {max_pages()} (TRACKER_MAX_PAGES); stopped. The "
            "publisher's paging may be broken, or the data set grew: raise the setting if it really is that long"
        )


class _DeadlineRetry(Retry):
    """urllib3's Retry whose waits (backoff, Retry-After) never go past the source's deadline."""

    deadline: float | None = None

    def new(self, **kw):
        made = super().new(**kw)
        made.deadline = self.deadline
        return made

    def _room(self) -> float:
        return max(0.0, self.deadline - time.monotonic()) if self.deadline is not None else float("inf")

    def get_backoff_time(self) -> float:
        return min(super().get_backoff_time(), self._room())

    def get_retry_after(self, response):
        after = super().get_retry_after(response)
        return None if after is None else min(after, self._room())


class _RetryWarnings(logging.Filter):
    """Swallows urllib3's "Retrying (...) after connection broken by ..." warnings, counting them by cause."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter = Counter()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING and str(record.msg).startswith("Retrying"):
            cause = record.args[1] if isinstance(record.args, tuple) and len(record.args) > 1 else None
            with self._lock:
                self.counts[_short_cause(cause)] += 1
            return False
        return True


class HttpClient:
    def __init__(self, timeout: float | None = None, retries: int | None = None, backoff: float | None = None,
                 deadline: float | None = None, max_mb: float | None = None):
        self.timeout = timeout if timeout is not None else float(setting("TRACKER_HTTP_TIMEOUT"))
        self.retries = retries if retries is not None else int(setting("TRACKER_HTTP_RETRIES"))
        self.deadline_seconds = deadline if deadline is not None else float(setting("TRACKER_SOURCE_DEADLINE"))
        self.max_bytes = int(max_mb * 1024 * 1024) if max_mb is not None else max_bytes()
        backoff = backoff if backoff is not None else float(setting("TRACKER_HTTP_BACKOFF"))
        self.retry = _DeadlineRetry(
            total=self.retries,
            connect=self.retries,
            read=self.retries,
            status=self.retries,
            backoff_factor=backoff,
            backoff_max=60,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.max_redirects = 10
        adapter = HTTPAdapter(max_retries=self.retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._deadlines: dict[str, float] = {}
        self._retried: dict[str, Counter] = {}

    def begin(self, source: str) -> None:
        """A new run of `source`: its deadline starts now and its retry count from zero."""
        self._deadlines[source] = time.monotonic() + self.deadline_seconds
        self._retried[source] = Counter()

    def retry_note(self, source: str) -> str | None:
        """One line for the refresh summary: how often the source's requests were retried and why."""
        counts = self._retried.get(source)
        if not counts:
            return None
        total = sum(counts.values())
        why = ", ".join(f"{n} × {cause}" for cause, n in counts.most_common())
        return f"retried {total} time{'s' if total != 1 else ''} ({why})"

    def get(self, source: str, url: str, params: dict | None = None, **meta) -> Payload:
        return self._send(source, "GET", url, params=params, meta=meta)

    def post_json(self, source: str, url: str, body: dict, headers: dict | None = None, **meta) -> Payload:
        """`headers`: e.g. an API key (Stat-Xplore's APIKey): sent, never recorded in the payload's location or meta."""
        return self._send(source, "POST", url, json=body, headers=headers, meta=meta)

    def _remaining(self, source: str, shown: str) -> float:
        if source not in self._deadlines:
            self.begin(source)
        room = self._deadlines[source] - time.monotonic()
        if room <= 0:
            raise SourceError(
                f"{source}: stopped at {shown}: the source's fetches passed their {self.deadline_seconds:g} s deadline "
                "(TRACKER_SOURCE_DEADLINE); the publisher is very slow or the download endless; try later or raise it"
            )
        return room

    def _send(self, source: str, method: str, url: str, meta: dict, **kwargs) -> Payload:
        shown = redact_url(url)
        room = self._remaining(source, shown)
        self.retry.deadline = self._deadlines[source]
        timeout = min(self.timeout, room)
        with self._count_retries(source):
            try:
                response = self.session.request(method, url, timeout=timeout, stream=True, **kwargs)
                try:
                    full_url = redact_url(response.url)
                    self._count_status_retries(source, response)
                    if response.status_code != 200:
                        raise SourceError(
                            f"{source}: {full_url} answered HTTP {response.status_code} {response.reason}"
                            f"{' after ' + str(self.retries) + ' retries' if response.status_code in (429, 500, 502, 503, 504) else ''}"
                        )
                    content = self._read_bounded(source, response, full_url)
                    if response.headers.get("Last-Modified"):  # when the publisher last changed it: its release date
                        meta = {**meta, "last_modified": response.headers["Last-Modified"]}
                finally:
                    response.close()
            except SourceError:
                raise
            except requests.exceptions.TooManyRedirects as exc:
                raise SourceError(
                    f"{source}: {shown} redirects in a loop (more than {self.session.max_redirects} redirects); "
                    "the address may have moved: check the base URL setting"
                ) from exc
            except requests.exceptions.RetryError as exc:
                raise SourceError(f"{source}: {shown} kept failing after {self.retries} retries ({_root_cause(exc)})") from exc
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
                raise SourceError(self._connection_message(source, shown, exc, timeout)) from exc
            except requests.exceptions.ChunkedEncodingError as exc:
                raise SourceError(f"{source}: the response from {shown} was cut short ({_root_cause(exc)})") from exc
            # reading the body (urllib3 directly, not wrapped by requests)
            except (urllib3.exceptions.ReadTimeoutError, socket.timeout) as exc:
                raise SourceError(self._connection_message(source, shown, exc, timeout)) from exc
            except urllib3.exceptions.ProtocolError as exc:
                raise SourceError(f"{source}: the response from {shown} was cut short ({_root_cause(exc)})") from exc
            except urllib3.exceptions.HTTPError as exc:  # e.g. a broken gzip stream while decoding
                raise SourceError(f"{source}: the response from {shown} could not be read ({_root_cause(exc)})") from exc
        return Payload(location=full_url, content=content, meta=meta)

    def _read_bounded(self, source: str, response: requests.Response, shown: str) -> bytes:
        """The body, decompressed, read a piece at a time: stops at the size cap and at the source's deadline
        (a server dripping a byte at a time never trips the per-read timeout)."""
        raw = response.raw
        read = getattr(raw, "read1", None)
        parts, size = [], 0
        while True:
            self._remaining(source, shown)
            chunk = read(CHUNK, decode_content=True) if read else raw.read(CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_bytes:
                raise SourceError(
                    f"{source}: the response from {shown} passed the {self.max_bytes / 1048576:g} MB cap after "
                    "decompression (TRACKER_HTTP_MAX_MB); stopped reading. If the publisher's file really is that "
                    "big, raise the setting"
                )
            parts.append(chunk)
        return b"".join(parts)

    def _connection_message(self, source: str, shown: str, exc: Exception, timeout: float) -> str:
        """Tell apart: the name did not resolve, the connection was refused, TLS failed, it timed out, or the
        connection broke. In that order: urllib3's NewConnectionError is also a ConnectTimeoutError."""
        host = urlsplit(shown).hostname or shown
        port = urlsplit(shown).port
        where = f"{host}:{port}" if port else host
        chain = list(_chain(exc))
        if any(isinstance(e, socket.gaierror) for e in chain) or any(
                type(e).__name__ == "NameResolutionError" for e in chain):
            return (f"{source}: cannot resolve {host}: no network, or no DNS? (fetching {shown}); "
                    "check the connection or the base URL setting")
        if any(isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED for e in chain):
            return (f"{source}: {where} refused the connection (fetching {shown}): the service is down or the "
                    "address or port is wrong; check the base URL setting")
        if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(e, ssl.SSLError) for e in chain):
            return (f"{source}: TLS failed with {host} (fetching {shown}: {_root_cause(exc)}); a proxy or firewall "
                    "intercepting HTTPS, or an out-of-date certificate store?")
        if isinstance(exc, requests.exceptions.Timeout) or any(
                isinstance(e, (urllib3.exceptions.TimeoutError, socket.timeout, TimeoutError)) for e in chain):
            # once retries are used up, requests reports a read timeout as a ConnectionError: name it a timeout
            if self._deadlines.get(source, float("inf")) <= time.monotonic():
                return self._deadline_message(source, shown)
            return (f"{source}: {shown} timed out after {timeout:g} s ({self.retries} retries); "
                    "try later or raise TRACKER_HTTP_TIMEOUT")
        return (f"{source}: could not connect to {shown} after {self.retries} retries "
                f"({_root_cause(exc)}); check the network or the base URL setting")

    def _deadline_message(self, source: str, shown: str) -> str:
        try:
            self._remaining(source, shown)
        except SourceError as exc:
            return str(exc)
        return f"{source}: {shown} timed out"

    @contextmanager
    def _count_retries(self, source: str):
        catcher = _RetryWarnings()
        logger = logging.getLogger("urllib3.connectionpool")
        logger.addFilter(catcher)
        try:
            yield
        finally:
            logger.removeFilter(catcher)
            self._retried.setdefault(source, Counter()).update(catcher.counts)

    def _count_status_retries(self, source: str, response: requests.Response) -> None:
        retries = getattr(response.raw, "retries", None)
        for step in getattr(retries, "history", ()) or ():
            if step.status:
                self._retried.setdefault(source, Counter())[f"HTTP {step.status}"] += 1


def _chain(exc: BaseException):
    """exc, its causes and contexts, and the reasons urllib3 wraps inside them."""
    seen = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [a for a in (e.__cause__, e.__context__, getattr(e, "reason", None), *getattr(e, "args", ()))
                 if isinstance(a, BaseException)]


def _short_cause(error) -> str:
    if error is None:
        return "connection problem"
    chain = list(_chain(error)) if isinstance(error, BaseException) else []
    text = str(error)
    if any(isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError" for e in chain):
        return "name not resolved"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text.lower():
        return "connection refused"
    if any(isinstance(e, (TimeoutError, socket.timeout, urllib3.exceptions.TimeoutError)) for e in chain) or "timed out" in text:
        return "timed out"
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return "TLS error"
    if any(isinstance(e, ConnectionResetError) for e in chain) or "reset" in text.lower():
        return "connection reset"
    return type(error).__name__ if isinstance(error, BaseException) else "connection problem"


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__
    return f"{exc.__class__.__name__}: {exc}"[:200]
