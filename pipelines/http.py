"""HTTP for the live clients: requests with urllib3's Retry (backoff on 5xx and 429, honouring
Retry-After, retrying timeouts and reset connections), a timeout on every call and a User-Agent that
names the tracker."""

from __future__ import annotations

import re

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pipelines.base import Payload, SourceError
from tracker.config import USER_AGENT, setting


SECRET_PARAMS = re.compile(r"([?&](?:uid|key|api_key|token)=)[^&]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """API keys (NOMIS uid ...) must not reach run records, logs or error messages."""
    return SECRET_PARAMS.sub(r"\1***", url)


class HttpClient:
    def __init__(self, timeout: float | None = None, retries: int | None = None, backoff: float | None = None):
        self.timeout = timeout if timeout is not None else float(setting("TRACKER_HTTP_TIMEOUT"))
        self.retries = retries if retries is not None else int(setting("TRACKER_HTTP_RETRIES"))
        backoff = backoff if backoff is not None else float(setting("TRACKER_HTTP_BACKOFF"))
        retry = Retry(
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
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def get(self, source: str, url: str, params: dict | None = None, **meta) -> Payload:
        return self._send(source, "GET", url, params=params, meta=meta)

    def post_json(self, source: str, url: str, body: dict, headers: dict | None = None, **meta) -> Payload:
        """`headers`: e.g. an API key (Stat-Xplore's APIKey): sent, never recorded in the payload's location or meta."""
        return self._send(source, "POST", url, json=body, headers=headers, meta=meta)

    def _send(self, source: str, method: str, url: str, meta: dict, **kwargs) -> Payload:
        shown = redact_url(url)
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.RetryError as exc:
            raise SourceError(f"{source}: {shown} kept failing after {self.retries} retries ({exc.__class__.__name__})") from exc
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            # once retries are used up, requests reports a read timeout as a ConnectionError: name it a timeout
            if isinstance(exc, requests.exceptions.Timeout) or isinstance(
                getattr(exc.args[0] if exc.args else None, "reason", None), urllib3.exceptions.TimeoutError
            ):
                raise SourceError(
                    f"{source}: {shown} timed out after {self.timeout:g} s ({self.retries} retries); "
                    "try later or raise TRACKER_HTTP_TIMEOUT"
                ) from exc
            raise SourceError(
                f"{source}: could not connect to {shown} after {self.retries} retries "
                f"({_root_cause(exc)}); check the network or the base URL setting"
            ) from exc
        except requests.exceptions.ChunkedEncodingError as exc:
            raise SourceError(f"{source}: the response from {shown} was cut short ({_root_cause(exc)})") from exc
        full_url = redact_url(response.url)
        if response.status_code != 200:
            raise SourceError(
                f"{source}: {full_url} answered HTTP {response.status_code} {response.reason}"
                f"{' after ' + str(self.retries) + ' retries' if response.status_code in (429, 500, 502, 503, 504) else ''}"
            )
        if response.headers.get("Last-Modified"):  # when the publisher last changed it: its release date (status)
            meta = {**meta, "last_modified": response.headers["Last-Modified"]}
        return Payload(location=full_url, content=response.content, meta=meta)


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__
    return f"{exc.__class__.__name__}: {exc}"[:200]
