"""``arkserve disk put|get`` on plain HTTP move the bytes by the kernel (``arkserve.cli.disk_wire``): the file
goes out with ``sendfile(2)``, comes back with ``splice(2)``, against the API's own server, which splices
session ``PATCH`` bodies into the file too. On HTTPS the same wire reads and writes through one buffer, with
the server verified. Resume, ``Range``, refusals before the body, and the httpx fallback (proxies, a plain
``httpx.Client``) carry the same bytes."""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from arkserve import settings as settings_mod
from arkserve.api.app import create_app
from arkserve.auth.signing import sign_headers
from arkserve.bootstrap import prepare
from arkserve.cli import disk_transfer as xfer
from arkserve.cli import disk_wire as wire
from arkserve.sdk.client import ApiError
from arkserve.tls import ensure_local_ca
from tests.live import gateway_port_base, serve
from tests.storage.test_disk_transfer import MIB, Api, api, splice_calls  # noqa: F401  (fixtures)


@pytest.fixture
def wire_bytes(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Bytes the client moved through :class:`disk_wire.Wire` (the real methods, counted)."""
    moved = {"sent": 0, "spliced": 0}
    send_file, splice_into = wire.Wire.send_file, wire.Wire.splice_into

    def counted(key: str, progress: wire.Progress) -> wire.Progress:
        def step(n: int) -> None:
            moved[key] += n
            progress(n)
        return step

    def sent(self: wire.Wire, fd: int, offset: int, count: int, progress: wire.Progress) -> None:
        send_file(self, fd, offset, count, counted("sent", progress))

    def spliced(self: wire.Wire, fd: int, count: int, progress: wire.Progress) -> int:
        return splice_into(self, fd, count, counted("spliced", progress))

    monkeypatch.setattr(wire.Wire, "send_file", sent)
    monkeypatch.setattr(wire.Wire, "splice_into", spliced)
    return moved


def _round_trip(server: Api, tmp_path: Path, data: bytes, part: int,
                after_put: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """put ``data`` (resumable session in ``part``-byte PATCHes), get it back, check it; the progress bars'
    completed counts."""
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    with server.http() as http, xfer.progress() as bar:
        entry = xfer.put_file(http, src, "models/w.bin", overwrite=False, bar=bar, part=part)
        assert entry["size"] == len(data) and (server.disk / "models" / "w.bin").read_bytes() == data
        after_put()
        assert xfer.get_file(http, "models/w.bin", tmp_path / "back.bin", bar=bar) == len(data)
        assert (tmp_path / "back.bin").read_bytes() == data
        assert not (tmp_path / "back.bin.part").exists() and not (tmp_path / "back.bin.part.etag").exists()
        up, down = bar.tasks
        return up.completed, down.completed


def test_put_and_get_move_the_bytes_by_the_kernel(api: Api, tmp_path: Path, wire_bytes: dict[str, int],  # noqa: F811
                                                  splice_calls: list[int]) -> None:  # noqa: F811
    data = os.urandom(xfer.RESUMABLE_FROM + 3 * MIB + 17)

    def spliced_by_the_server() -> None:  # the session's PATCHes went socket -> pipe -> file on the server
        assert sum(splice_calls) >= len(data) and wire_bytes["spliced"] == 0

    assert _round_trip(api, tmp_path, data, 8 * MIB, spliced_by_the_server) == (len(data), len(data))
    assert wire_bytes == {"sent": len(data), "spliced": len(data)}  # no byte of the body through Python
    with api.http() as http, xfer.progress() as bar:  # a small file: one PUT, also by the kernel
        (tmp_path / "small.bin").write_bytes(data[:MIB])
        assert xfer.put_file(http, tmp_path / "small.bin", "small.bin", overwrite=False, bar=bar)["size"] == MIB
    assert wire_bytes["sent"] == len(data) + MIB and (api.disk / "small.bin").read_bytes() == data[:MIB]


def test_get_resumes_through_the_wire_and_refetches_a_changed_file(api: Api, tmp_path: Path,  # noqa: F811
                                                                   wire_bytes: dict[str, int]) -> None:
    data = os.urandom(5 * MIB + 3)
    local = tmp_path / "f.bin"
    with api.http() as http, xfer.progress() as bar:
        assert http.put("/files/f.bin", content=data).status_code == 201
        etag = http.get("/files/f.bin", headers={"Range": "bytes=0-0"}).headers["etag"]
        (tmp_path / "f.bin.part").write_bytes(b"\0" * MIB)  # an earlier run's first MiB (marked)
        (tmp_path / "f.bin.part.etag").write_text(etag)
        assert xfer.get_file(http, "f.bin", local, bar=bar) == len(data)
        assert local.read_bytes() == b"\0" * MIB + data[MIB:] and wire_bytes["spliced"] == len(data) - MIB
        assert bar.tasks[-1].completed == len(data)
        local.unlink()
        (tmp_path / "f.bin.part").write_bytes(b"\0" * (6 * MIB))  # longer than the file: 416, then whole
        (tmp_path / "f.bin.part.etag").write_text(etag)
        assert xfer.get_file(http, "f.bin", local, bar=bar) == len(data)
        assert local.read_bytes() == data
        with pytest.raises(ApiError) as missing:
            xfer.get_file(http, "nope.bin", tmp_path / "nope.bin", bar=bar)
        assert missing.value.status == 404 and missing.value.code == "PathNotFound"


def test_a_refused_upload_sends_no_body(api: Api, tmp_path: Path, wire_bytes: dict[str, int]) -> None:  # noqa: F811
    with api.http() as http:
        assert http.put("/quota/admin", json={"limit_bytes": MIB}).status_code == 200
        (tmp_path / "big.bin").write_bytes(os.urandom(8 * MIB))
        with xfer.progress() as bar, pytest.raises(ApiError) as over:
            xfer.put_file(http, tmp_path / "big.bin", "big.bin", overwrite=False, bar=bar)
        assert over.value.status == 413 and over.value.code == "QuotaExceeded"
        assert wire_bytes["sent"] == 0  # it waited for "100 Continue", which never came
        assert not (api.disk / "big.bin").exists() and http.get("/usage").json()["used"] == 0


def test_without_the_wire_httpx_carries_the_same_bytes(api: Api, tmp_path: Path, wire_bytes: dict[str, int],  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "usable", lambda http: False)
    data = os.urandom(xfer.RESUMABLE_FROM + 5 * MIB + 1)
    assert _round_trip(api, tmp_path, data, part=8 * MIB) == (len(data), len(data))
    assert wire_bytes == {"sent": 0, "spliced": 0}


def test_the_wire_is_used_only_on_plain_http_without_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert wire.usable(httpx.Client(base_url="http://127.0.0.1:7780/api/v1/disk"))
    assert not wire.usable(httpx.Client(base_url="https://127.0.0.1:7780/api/v1/disk"))  # TLS: httpx
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    assert not wire.usable(httpx.Client(base_url="http://127.0.0.1:7780/api/v1/disk"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert wire.usable(httpx.Client(base_url="http://127.0.0.1:7780/api/v1/disk"))


def test_a_spliced_patch_cut_short_keeps_what_arrived(api: Api, tmp_path: Path, splice_calls: list[int]) -> None:  # noqa: F811
    data = os.urandom(xfer.RESUMABLE_FROM + 4 * MIB)  # the CLI resumes files this big
    with api.http() as http:
        session = http.post("/uploads", json={"path": "cut.bin", "size": len(data)}).json()
        too_long = http.patch(f"/uploads/{session['id']}", params={"offset": 0}, content=iter([data, b"x"]),
                              headers={"Content-Length": str(len(data) + 1)})
        assert too_long.status_code == 400 and too_long.json()["code"] == "SizeMismatch"
        path = f"/api/v1/disk/uploads/{session['id']}?offset=0"
        host = f"127.0.0.1:{api.port}"
        head = sign_headers(method="PATCH", url=path, host=host, access_key=api.ak, secret_key=api.sk, body=None,
                            now=time.time())
        request = f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(data)}\r\n"
        request += "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
        with socket.create_connection(("127.0.0.1", api.port)) as s:  # 5 MiB, then gone
            s.sendall(request.encode() + data[:5 * MIB])
        deadline = time.monotonic() + 30
        while http.get(f"/uploads/{session['id']}").json()["offset"] < 5 * MIB:
            assert time.monotonic() < deadline, "the cut PATCH's bytes were not kept"
            time.sleep(0.05)
        assert sum(splice_calls) >= 4 * MIB  # the PATCH body was spliced, not read through Python
        (tmp_path / "cut.bin").write_bytes(data)
        with xfer.progress() as bar:  # the CLI's put finds the session and sends the rest
            while True:
                try:
                    entry = xfer.put_file(http, tmp_path / "cut.bin", "cut.bin", overwrite=False, bar=bar)
                    break
                except ApiError as exc:  # the server may still hold the cut PATCH's claim a moment
                    assert exc.code == "UploadInProgress" and time.monotonic() < deadline, exc
                    time.sleep(0.05)
        assert entry["size"] == len(data) and (api.disk / "cut.bin").read_bytes() == data


def test_on_https_the_wire_carries_the_bytes_through_tls(tmp_path: Path, wire_bytes: dict[str, int]) -> None:
    env = {"ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml")}
    s = settings_mod.load({"data_dir": str(tmp_path / "data"), "gateway.port_base": gateway_port_base()}, env=env)
    boot = prepare(s, env=env)
    files = ensure_local_ca(tmp_path / "ca", "ark.test")
    data = os.urandom(xfer.RESUMABLE_FROM + 2 * MIB + 5)
    (tmp_path / "src.bin").write_bytes(data)
    local = tmp_path / "back.bin"
    with serve(create_app(s, boot.store, boot.master), settings=s, tls=(str(files.cert), str(files.key))) as url:
        with xfer.open_disk(url, boot.access_key, boot.secret_key, str(files.ca_cert)) as http, \
                xfer.progress() as bar:
            assert wire.usable(http)
            entry = xfer.put_file(http, tmp_path / "src.bin", "tls.bin", overwrite=False, bar=bar, part=8 * MIB)
            assert entry["size"] == len(data)
            assert (s.data_dir / "disks" / "admin" / "tls.bin").read_bytes() == data
            (tmp_path / "back.bin.part").write_bytes(data[:MIB])  # resumed with Range through TLS too
            (tmp_path / "back.bin.part.etag").write_text(
                http.get("/files/tls.bin", headers={"Range": "bytes=0-0"}).headers["etag"])
            assert xfer.get_file(http, "tls.bin", local, bar=bar) == len(data)
            assert local.read_bytes() == data
            assert wire_bytes == {"sent": len(data), "spliced": len(data) - MIB}
        with xfer.open_disk(url, boot.access_key, boot.secret_key) as http, xfer.progress() as bar, \
                pytest.raises(ssl.SSLCertVerificationError):  # the server is still verified: not our CA
            xfer.get_file(http, "tls.bin", tmp_path / "again.bin", bar=bar)
    boot.store.dispose()
