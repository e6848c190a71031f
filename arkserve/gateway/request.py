"""Turn a parsed request head into an :class:`Exchange`: framing checks, Host, request id,
forwarding headers, route lookup and the signature check (before any body byte is accepted).

The header loop is the hottest Python on the request path: one ``lower()`` and one dict lookup
per header; the values the signature check needs are kept as raw bytes (``verify_wire`` takes them
as they are; they are decoded only when it falls back to ``verify``).

Verified signatures are remembered per worker (``Core.verified``, a few hundred), keyed by every
input of the check as raw bytes: Authorization (so the AK and the signature), date, host, content
hash, method, URL and the service. A client that repeats a request within a second (the reference client signs
an upload as an unsigned payload, and ``date`` has one-second resolution) sends identical headers,
and the same inputs give the same verdict, so a hit skips ``verify()``. What can change the verdict
is not in the key: the window is re-checked against the stored date on every hit, and the cache is
emptied whenever a new snapshot (keys, their state, the routes) is applied. Only successes are
stored, and a lookup compares hashed keys (SipHash), so it tells an attacker nothing about a
signature they do not already have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arkserve.auth.signing import EMPTY_CONTENT_HASH, SignatureError, check_payload
from arkserve.gateway import asyncintake
from arkserve.gateway.auth import Decision, authenticate
from arkserve.gateway.exchange import Exchange
from arkserve.gateway.http import (
    HOP_BY_HOP,
    HttpError,
    host_port,
    host_service,
    request_id,
    valid_host,
    without_console_cookie,
)

if TYPE_CHECKING:
    from arkserve.gateway.proxy import ClientConnection

HOST, AUTHZ, DATE, CHASH, CLEN, TENC, RID, EXPECT, XFF, UPGRADE, FWD, CONN, DROP = range(13)
# FWD: what a client says about earlier hops, believed (forwarded as is) only with trust_forwarded, like its
# X-Forwarded-For; CONN: the Connection header, whose tokens name more hop-by-hop headers (_strip_named)
_CODES = {b"host": HOST, b"authorization": AUTHZ, b"date": DATE, b"x-ark-content-sha256": CHASH,
          b"content-length": CLEN, b"transfer-encoding": TENC, b"x-request-id": RID, b"expect": EXPECT,
          b"x-forwarded-for": XFF, b"upgrade": UPGRADE, b"x-forwarded-proto": DROP, b"x-ark-access-key": DROP,
          b"forwarded": FWD, b"x-real-ip": FWD, b"x-forwarded-host": FWD, b"connection": CONN}
_CODES.update({n: DROP for n in HOP_BY_HOP if n not in _CODES})
# the spellings clients send, looked up as received before paying for a lower(); PASS: forwarded as is
PASS = DROP + 1
_CODES.update({b"-".join(w.capitalize() for w in n.split(b"-")): c for n, c in list(_CODES.items())})
_CODES[b"X-Ark-Content-SHA256"] = CHASH
_CODES[b"X-Real-IP"] = FWD
# Connection values that name no header beyond the hop-by-hop ones every request loses anyway (Upgrade is set
# again for a handshake): the common ones skip _strip_named
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b"upgrade", b"keep-alive, upgrade", b"upgrade, keep-alive"})
_NOT_NAMED = frozenset({b"", b"keep-alive", b"close", b"upgrade", b"host"})  # never stripped by _strip_named
_CODES.update({n: PASS for n in (b"user-agent", b"User-Agent", b"accept", b"Accept", b"content-type",
                                 b"Content-Type", b"accept-encoding", b"Accept-Encoding")})
_NAMES = {AUTHZ: "authorization", DATE: "date", CHASH: "x-ark-content-sha256"}
# asynchronous inference (asyncintake.py): read, never forwarded
ASYNC, CALLBACK, INTERNAL, INTERNAL_KEY = PASS + 1, PASS + 2, PASS + 3, PASS + 4
for _n, _c in ((b"x-ark-async", ASYNC), (b"x-ark-callback-url", CALLBACK), (b"x-ark-internal", INTERNAL),
               (b"x-ark-internal-key", INTERNAL_KEY)):
    _CODES[_n] = _CODES[b"-".join(w.capitalize() for w in _n.split(b"-"))] = _c
COOKIE = INTERNAL_KEY + 1  # forwarded without the console's session (http.without_console_cookie)
_CODES[b"cookie"] = _CODES[b"Cookie"] = COOKIE


def build_exchange(conn: ClientConnection) -> Exchange:
    core = conn.core
    parser = conn.parser
    method = parser.get_method()
    url = conn.url
    head = [method, b" ", url, b" HTTP/1.1\r\n"]
    host = rid = te = xff = upgrade = None
    cl = -1
    dropped = False  # a hop-by-hop header (Connection among them) came
    expect = False
    signing: dict[int, bytes] = {}
    asyncs: dict[int, bytes] | None = None
    err: HttpError | None = None
    codes = _CODES
    connection: bytes | None = None  # the Connection header's value(s)
    for name, value in conn.headers:
        code = codes.get(name)
        if code is None:
            code = codes.get(name.lower())
            if code is None:
                # a name with "_" is dropped (nginx's underscores_in_headers off): CGI/WSGI servers read "_" as
                # "-", so X_Ark_Access_Key would reach the app as the X-Ark-Access-Key the gateway sets
                if b"_" not in name:
                    head += (name, b": ", value, b"\r\n")
                continue
        if code == PASS:
            head += (name, b": ", value, b"\r\n")
        elif code == HOST:
            if host is not None:
                err = HttpError(400, "BadHost", "more than one Host header")
            host = value
            head += (name, b": ", value, b"\r\n")
        elif code <= CHASH:
            if code in signing:
                err = HttpError(400, "BadRequest", f"more than one {_NAMES[code]} header")
            signing[code] = value
            if code != AUTHZ:
                head += (name, b": ", value, b"\r\n")
        elif code == CLEN:
            cl = int(value)
        elif code == TENC:  # two headers are one list: "gzip" then "chunked" is refused like "gzip, chunked"
            te = value if te is None else te + b", " + value
        elif code == RID:
            rid = value
        elif code == EXPECT:
            expect = value.lower() == b"100-continue"
        elif code == XFF and core.config.trust_forwarded:
            xff = b"x-forwarded-for: " + value + b", " + conn.fwd[17:]
        elif code == UPGRADE:
            upgrade = value
        elif code == COOKIE:
            value = without_console_cookie(value)
            if value:
                head += (name, b": ", value, b"\r\n")
        elif code > PASS:
            if asyncs is None:
                asyncs = {}
            asyncs[code] = value
        elif code == FWD:
            if core.config.trust_forwarded:
                head += (name, b": ", value, b"\r\n")
        else:
            dropped = True
            if code == CONN:
                connection = value if connection is None else connection + b"," + value
    if connection is not None and connection.lower() not in _PLAIN_CONNECTION:
        _strip_named(head, connection)
    rid_b = request_id(rid)
    chunked = te is not None
    if chunked and te.strip().lower() != b"chunked":  # type: ignore[union-attr]
        err = err or HttpError(400, "BadRequest", "only Transfer-Encoding: chunked is supported")
    if err is None:
        if host is None:
            err = HttpError(400, "BadHost", "the Host header is missing")
        elif host != conn.host_ok and not _valid_host(conn, host):
            err = HttpError(400, "BadHost", "the Host header is not a valid host[:port]")
        elif url[:1] != b"/":
            err = HttpError(400, "BadRequest", "the request target must be a path")
    head += (conn.fwd if xff is None else xff, b"x-request-id: ", rid_b, b"\r\n")
    route = None
    if err is None:
        if core.host_mode:
            svc = host_service(host, core.host_suffix)  # type: ignore[arg-type]
            route = core.services.get(svc) if svc is not None else None
        else:
            route = core.port_routes.get(conn.port)
        if route is None:
            err = HttpError(404, "NoSuchService", "no service is served at this endpoint")
        elif cl > core.config.max_body_bytes:
            err = HttpError(413, "PayloadTooLarge", f"body exceeds {core.config.max_body_bytes} bytes")
    has_body = cl > 0 or chunked
    keep_alive = parser.should_keep_alive()
    # an HTTP/1.0 request is kept alive only with "Connection: keep-alive", so a kept-alive request that sent no
    # hop-by-hop header is 1.1: the parser's version (a string formatted per call) is asked for only otherwise
    http10 = (dropped or not keep_alive) and parser.get_http_version() == "1.0"
    ex = Exchange(conn, core, route, method, url, head, rid_b, chunked, cl, keep_alive and not core.closing, http10)
    ex.expect = expect
    ex.req_done = not has_body
    if upgrade is not None and parser.should_upgrade():  # Upgrade plus Connection: upgrade (tunnel.py)
        ex.upgrade = upgrade
        ex.keep_alive = False  # the connection becomes the tunnel, or closes after a refusal
        head.append(b"connection: upgrade\r\nupgrade: " + upgrade + b"\r\n")
    if err is None and route is not None:
        # the dispatcher's marker counts only with its token: a wrong one is no marker (the request is the
        # client's own, signed or public, and its X-Ark-Async or /async/ path is the intake's as usual)
        internal = asyncs is not None and INTERNAL in asyncs and asyncintake.internal_ok(core.async_queue,
                                                                                         asyncs[INTERNAL])
        if internal:
            err = _internal(ex, asyncs.get(INTERNAL_KEY, b""))  # type: ignore[union-attr]  # checked at intake
        elif route.auth:
            err = _other_host(conn, host) or _authenticate(ex, signing, host, has_body)  # type: ignore[arg-type]
        elif AUTHZ in signing and route.pass_authorization:  # else a public service never sees it
            head += (b"authorization: ", signing[AUTHZ], b"\r\n")
        if err is None and not internal and (asyncs is not None or url[:7] == b"/async/"):
            err = _async(ex, asyncs or {}, has_body, cl)
    ex.error = err
    return ex


def _strip_named(head: list[bytes], connection: bytes) -> None:
    """Drop the forwarded headers the client's Connection header names (hop-by-hop, RFC 9110 7.6.1), Host
    excepted. ``head`` holds the request line's 4 pieces, then 4 pieces per header forwarded so far."""
    named = {t.strip().lower() for t in connection.split(b",")} - _NOT_NAMED
    if named:
        head[4:] = [p for i in range(4, len(head), 4) if head[i].lower() not in named for p in head[i:i + 4]]


def _internal(ex: Exchange, ak_b: bytes) -> HttpError | None:
    """A stored request sent again by the dispatcher: no signature (checked at intake), but the key must still
    exist and may still call the service (a key deleted or disabled since gets 403). It waits for the replica up
    to the asynchronous request timeout (``asyncq.request_timeout_s``), not the route's: that bounds the clients
    that hold a connection open, and an asynchronous request is made so that none does."""
    route = ex.route
    assert route is not None
    ex.timeout_s = ex.core.config.async_request_timeout_s
    if not route.auth:
        return None
    ak = ak_b.decode("ascii", "replace")
    key = ex.core.snapshot.keys.get(ak)
    if key is None or not ex.core.snapshot.may_call(key, route):
        return HttpError(403, "AccessDenied", "the key that submitted this request may no longer call "
                         f"service {route.name!r}")
    ex.access_key = ak
    ex.head.append(b"x-ark-access-key: " + ak_b + b"\r\n")
    return None


def _async(ex: Exchange, asyncs: dict[int, bytes], has_body: bool, cl: int) -> HttpError | None:
    queue = ex.core.async_queue
    if queue is None:
        if ASYNC in asyncs:
            return HttpError(501, "AsyncUnavailable", "asynchronous requests are not enabled on this gateway")
        return None  # /async/... is an ordinary path here
    req = asyncintake.classify(queue, ex.method, ex.url, asyncs.get(ASYNC), asyncs.get(CALLBACK),
                               ex.conn.headers, ex.conn.tls)
    if req is None or isinstance(req, HttpError):
        return req
    if req.kind == "submit":
        if cl > queue.max_body_bytes:
            return HttpError(413, "PayloadTooLarge", f"an asynchronous request's body may not exceed "
                             f"{queue.max_body_bytes} bytes")
        asyncintake.prepare_body(ex, has_body)
    ex.async_req = req
    return None


def _valid_host(conn: ClientConnection, host: bytes) -> bool:
    if valid_host(host):
        conn.host_ok = host
        return True
    return False


def _other_host(conn: ClientConnection, host: bytes) -> HttpError | None:
    """Port addressing: a signature covers the Host, so the Host must name the port the request arrived on (a
    request signed for another service's port is refused). Host addressing routes by the Host itself."""
    if conn.core.host_mode or host == conn.host_port_ok:
        return None
    port = host_port(host)
    if port == conn.port or (port is None and conn.port in (80, 443)):
        conn.host_port_ok = host
        return None
    conn.core.metrics.auth_failure("HostMismatch")
    named = f"port {port}" if port is not None else "no port"
    return HttpError(401, "HostMismatch", f"the Host header names {named} but the request arrived on port "
                                          f"{conn.port}: sign each request for the endpoint it is sent to")


def _authenticate(ex: Exchange, signing: dict[int, bytes], host: bytes, has_body: bool) -> HttpError | None:
    core = ex.core
    route = ex.route
    assert route is not None
    # one bytes key (one hash, one object): unambiguous because llhttp refuses CR and LF in header values,
    # the method and the request target (tests/gateway/test_hostile.py), and only successes are stored
    ck = b"\n".join((signing.get(AUTHZ, b""), signing.get(DATE, b""), signing.get(CHASH, b""), host, ex.method,
                     ex.url, route.name.encode()))
    hit = core.verified.get(ck)
    try:
        if hit is not None:
            d, ts = hit
            if not -core.config.skew_s <= core.wall - ts <= core.config.skew_s:
                del core.verified[ck]
                d = _verify(ex, signing, host)  # raises RequestExpired with the full message
        else:
            d = _verify(ex, signing, host)
            if core.config.verified_cache > 0:
                if len(core.verified) >= core.config.verified_cache:
                    core.verified.clear()
                core.verified[ck] = (d, d.signed_at)
        if not has_body and d.claimed != EMPTY_CONTENT_HASH:  # a public constant: no timing to hide
            check_payload(d.claimed, EMPTY_CONTENT_HASH, 0, require_signed=d.require_signed)  # raises
    except SignatureError as exc:
        core.metrics.auth_failure(exc.code)
        return HttpError(exc.status, exc.code, exc.message)
    ex.access_key, ex.claimed, ex.require_signed = d.access_key, d.claimed, d.require_signed
    ex.head.append(d.head_line)
    if has_body and d.must_spool(has_body):
        ex.spool = core.new_spool()
    return None


def _verify(ex: Exchange, signing: dict[int, bytes], host: bytes) -> Decision:
    core = ex.core
    return authenticate(core.snapshot, core.secrets.get, ex.route, ex.method, ex.url,  # type: ignore[arg-type]
                        signing.get(AUTHZ), signing.get(DATE), host, signing.get(CHASH), core.wall,
                        core.config.skew_s)
