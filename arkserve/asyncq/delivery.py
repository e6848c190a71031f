"""Sending one stored request to its service, through the gateway on loopback, and judging the outcome.

Going through the gateway gives stored requests the same balancing, queueing, retries and request log as any
other. The request carries ``X-Ark-Internal`` (a token derived from the master key) and ``X-Ark-Internal-Key``
(the key that submitted it): the gateway skips the signature, which it checked at intake, but not the key's
access. TLS to the gateway is not verified: the connection goes to this host's loopback address.

Outcomes: ``result`` (the app answered: any status is the app's result), ``retry`` (nothing reached the app for
sure — the gateway is away, or it answered with its own "no replica / service failing / not accepted" error — or
the connection broke after sending, which makes delivery at-least-once), ``fail`` (the gateway refused for good:
the service is gone, the key may no longer call it, the app timed out or broke the response).
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from typing import Any

import httpx

from arkserve.asyncq import files
from arkserve.settings import Settings

RETRY_CODES = frozenset({"NoReplicaAvailable", "ServiceFailing", "UpstreamUnavailable", "AsyncStoreUnavailable"})
FAIL_CODES = frozenset({"NoSuchService", "AccessDenied", "UpstreamError", "UpstreamTimeout", "PayloadTooLarge",
                        "BadRequest", "BadHost", "HeadersTooLarge"})
_DROP_RESULT = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "date", "x-request-id",
                          "trailer", "upgrade", "proxy-connection", "te"})


@dataclass
class Outcome:
    kind: str  # result | retry | fail
    error: str = ""
    status: int = 0
    headers: list[list[str]] = field(default_factory=list)
    body: bytes = b""


def loopback_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Sender:
    def __init__(self, settings: Settings, internal_token: bytes) -> None:
        g = settings.gateway
        self.scheme = "https" if g.tls else "http"
        self.host = g.host if g.host not in ("", "0.0.0.0", "::") else "127.0.0.1"  # noqa: S104 - a wildcard bind: loopback
        self.host_mode = g.addressing == "host"
        self.host_port = g.host_port
        self.base_domain = g.base_domain
        self.token = internal_token.decode("ascii")
        self.limit = settings.asyncq.max_body_bytes
        self.dir = files.body_dir(settings.data_dir)
        a = settings.asyncq
        self.client = httpx.Client(verify=loopback_context() if g.tls else False, trust_env=False,  # no proxy: the
                                   # requests carry the internal token and the stored bodies, to loopback only
                                   timeout=httpx.Timeout(a.request_timeout_s, connect=5.0),
                                   limits=httpx.Limits(max_connections=a.concurrency + 4))

    def send(self, row: dict[str, Any], gateway_port: int | None) -> Outcome:
        port = self.host_port if self.host_mode else gateway_port
        if port is None:
            return Outcome("retry", "the service has no gateway port yet")
        url = httpx.URL(scheme=self.scheme, host=self.host, port=port, raw_path=row["path"].encode("latin-1"))
        headers = [(k, v) for k, v in row["headers"]]
        if not any(k.lower() == "accept-encoding" for k, _ in headers):
            headers.append(("accept-encoding", "identity"))  # not httpx's gzip: the client did not ask for one
        headers += [("x-ark-internal", self.token), ("x-ark-internal-key", row["access_key"]),
                    ("x-request-id", row["id"])]
        if self.host_mode:
            headers.append(("host", f"{row['service']}.{self.base_domain}"))
        body: Any = row["body"] or b""
        fh = files.open_body(self.dir, row["body_file"]) if row["body_file"] else None
        if fh is not None:  # streamed with its length, not chunked
            headers.append(("content-length", str(row["body_size"])))
        try:
            with self.client.stream(row["method"], url, headers=headers,
                                    content=fh if fh is not None else body) as resp:
                data = bytearray()
                for chunk in resp.iter_raw():  # the bytes the app sent, as its content-encoding says
                    data += chunk
                    if len(data) > self.limit:
                        return Outcome("fail", f"the app's response exceeds {self.limit} bytes")
                return self._judge(row, resp, bytes(data))
        except httpx.ConnectError as exc:
            return Outcome("retry", f"the gateway is not reachable: {exc}")
        except httpx.ConnectTimeout:
            return Outcome("retry", "connecting to the gateway timed out")
        except httpx.ReadTimeout:
            return Outcome("fail", "no answer within the asynchronous request timeout")
        except httpx.HTTPError as exc:  # broke after sending: the app may have seen it (at-least-once)
            return Outcome("retry", f"the connection to the gateway broke: {exc.__class__.__name__}: {exc}")
        finally:
            if fh is not None:
                fh.close()

    @staticmethod
    def _judge(row: dict[str, Any], resp: httpx.Response, body: bytes) -> Outcome:
        if resp.status_code in (400, 403, 404, 413, 431, 502, 503, 504) and \
                resp.headers.get("content-type", "").startswith("application/json"):
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and doc.get("request_id") == row["id"]:
                code = str(doc.get("code", ""))
                if code in RETRY_CODES:
                    return Outcome("retry", f"{code}: {doc.get('message', '')}")
                if code in FAIL_CODES:
                    return Outcome("fail", f"{code}: {doc.get('message', '')}")
        headers = [[k, v] for k, v in resp.headers.multi_items() if k.lower() not in _DROP_RESULT]
        return Outcome("result", status=resp.status_code, headers=headers, body=body)

    def close(self) -> None:
        self.client.close()
