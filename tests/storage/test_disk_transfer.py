"""Big transfers through the API's own server (``arkserve.api.server``, as ``arkserve api`` runs it): downloads
go out through ``sendfile(2)`` (whole files, ranges, keep-alive after them, a client that leaves mid-way);
unsigned-payload uploads are spliced from the socket into the file and arrive whole; a client leaving
mid-upload installs nothing."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from arkserve import settings as settings_mod
from arkserve.api import transfer
from arkserve.api.app import create_app
from arkserve.auth.signing import sign_headers
from arkserve.bootstrap import prepare
from arkserve.sdk.auth import ArkAuth
from tests.live import free_port, gateway_port_base, serve

MIB = 1 << 20


@dataclass
class Api:
    port: int
    ak: str
    sk: str
    disk: Path

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}/api/v1/disk", auth=ArkAuth(self.ak, self.sk),
                            timeout=60)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    env = {"ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml")}
    s = settings_mod.load({"data_dir": str(tmp_path / "data"), "gateway.port_base": gateway_port_base()}, env=env)
    boot = prepare(s, env=env)
    port = free_port()
    with serve(create_app(s, boot.store, boot.master), port, settings=s):  # the API's own server
        yield Api(port, boot.access_key, boot.secret_key, s.data_dir / "disks" / "admin")
    boot.store.dispose()


@pytest.fixture
def sendfile_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The byte counts of every ``os.sendfile`` the server makes (the real call, counted)."""
    calls: list[int] = []
    real = os.sendfile

    def counted(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        n = real(out_fd, in_fd, offset, count)
        calls.append(n)
        return n

    monkeypatch.setattr(transfer.os, "sendfile", counted)
    return calls


@pytest.fixture
def splice_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The byte counts of every ``os.splice`` the server makes (the real call, counted)."""
    calls: list[int] = []
    real = os.splice

    def counted(src: int, dst: int, count: int, *args: int) -> int:
        n = real(src, dst, count, *args)
        calls.append(n)
        return n

    monkeypatch.setattr(transfer.os, "splice", counted)
    return calls


def _pieces(data: bytes, size: int = 300_000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_download_goes_out_through_sendfile_whole_and_in_ranges(api: Api, sendfile_calls: list[int],
                                                                 splice_calls: list[int]) -> None:
    data = os.urandom(24 * MIB + 12345)
    with api.http() as http:
        put = http.put("/files/big.bin", content=_pieces(data), headers={"Content-Length": str(len(data))})
        assert put.status_code == 201, put.text
        assert (api.disk / "big.bin").read_bytes() == data
        assert sum(splice_calls) >= len(data)  # socket -> pipe -> file: most of it never entered Python
        # a body whose hash is signed goes through Python (to be hashed), and arrives the same
        small = os.urandom(3 * MIB)
        assert http.put("/files/signed.bin", content=small).status_code == 201  # bytes: ArkAuth signs the hash
        assert (api.disk / "signed.bin").read_bytes() == small
        http.delete("/files/signed.bin")
        got = http.get("/files/big.bin")
        assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
        assert sum(sendfile_calls) == len(data)  # every byte went through the kernel, none through Python
        part = http.get("/files/big.bin", headers={"Range": "bytes=5000000-15000000"})
        assert part.status_code == 206 and part.content == data[5_000_000:15_000_001]
        assert http.get("/files/big.bin", headers={"Range": "bytes=-7"}).content == data[-7:]
        # the same keep-alive connection serves a JSON answer after a sendfile body
        assert http.get("/usage").json()["used"] == len(data)
        assert sum(sendfile_calls) == len(data) + 10_000_001 + 7


def test_a_client_leaving_mid_upload_installs_nothing(api: Api) -> None:
    host = f"127.0.0.1:{api.port}"
    path = "/api/v1/disk/files/half.bin"
    head = sign_headers(method="PUT", url=path, host=host, access_key=api.ak, secret_key=api.sk, body=None,
                        now=time.time())
    request = f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {64 * MIB}\r\n"
    request += "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", api.port)) as s:
        s.sendall(request.encode() + os.urandom(5 * MIB))
    staging = api.disk.parent / ".staging" / "admin" / "parts"
    with api.http() as http:  # once the server has noticed, the name is free and nothing half is under it
        deadline = time.monotonic() + 30
        while (r := http.put("/files/half.bin", content=b"whole")).status_code == 409:
            assert r.json()["code"] == "UploadInProgress", r.text
            assert time.monotonic() < deadline, "the half upload still holds the name"
            time.sleep(0.05)
        assert r.status_code == 201, r.text
    assert (api.disk / "half.bin").read_bytes() == b"whole" and list(staging.iterdir()) == []


def test_a_client_leaving_mid_download_leaves_the_server_serving(api: Api) -> None:
    data = os.urandom(32 * MIB)
    with api.http() as http:
        assert http.put("/files/big.bin", content=data).status_code == 201
    host = f"127.0.0.1:{api.port}"
    path = "/api/v1/disk/files/big.bin"
    head = sign_headers(method="GET", url=path, host=host, access_key=api.ak, secret_key=api.sk, body=None,
                        now=time.time())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
    with socket.create_connection(("127.0.0.1", api.port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall((request + "\r\n").encode())
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    with api.http() as http:  # the server is still there, and still sends whole files
        assert http.get("/files/big.bin").content == data
