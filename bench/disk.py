"""Network disk throughput: a file uploaded and downloaded through the API on loopback vs ``cp`` of the same
file on the same disk, in the same run, with the API process's peak RSS meanwhile.

    .venv/bin/python bench/disk.py                 # 1 GiB, 3 rounds
    .venv/bin/python bench/disk.py --mib 64 --rounds 1

Each round runs every row once, in the same order, so that each row's median comes from the same moments
as its references: ``cp``; ``curl`` against the API; a minimal client against the API
(:class:`disk_raw.RawClient`: ``sendfile(2)`` up, ``splice(2)`` down, nothing else: the API's own speed);
``arkserve disk put|get`` (the user's path: a fresh process, a resumable session in parts, progress bars,
the downloaded file fsync'ed and renamed); and ``curl`` against a bare server. Besides wall time, the CPU
seconds of the client and of the API process.

The API runs as its own process (``arkserve api``) over a fresh data dir in a temporary folder next to
the source file. Upload: one streamed ``PUT /api/v1/disk/files/...`` (signed, unsigned payload), which
ends with fsync + rename; so ``cp`` is timed both bare and followed by ``sync`` of the copy, the fair
reference for a durable write. Download: ``GET`` streamed to a local file (no fsync, like ``cp``).
The client is ``curl`` when it is installed (so the numbers are the server's, not a Python client's),
else httpx (``--client httpx`` forces it). With curl, the same client also runs against a bare server
(:class:`BareServer`: splice in, sendfile out, nothing else): the ceiling of any server for that client.

Every row starts from the same state of memory (``--memory``). On a VM that reports free memory to its host
(``virtio_balloon`` free page reporting, as on the project's machines) the first touch of a page freed more
than ~2 s earlier faults in the host: writing 1 GiB into such pages costs 0.5-1 s more than into pages freed
just now. Without care a row that follows an ``unlink`` (``cp`` did) gets the fast pages and the next row the
slow ones. ``warm`` (default): before each row a copy of the file is made and deleted, untimed, so every row
writes into just-freed page cache, as on a long-running host, where new page cache comes from reclaimed cache.
``cold``: before each row the bench waits 3 s, so every row, ``cp`` too, pays the host's faults.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from disk_raw import BareServer, RawClient

from arkserve import settings as settings_mod
from arkserve.auth import signing
from arkserve.bootstrap import prepare
from arkserve.sdk.auth import ArkAuth

CHUNK = 1 << 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def run(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, self.rss())


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    """CPU seconds of this process and its finished children (the clients)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Rows:
    """Wall seconds, client CPU seconds and API CPU seconds of each row, per round."""

    def __init__(self, api_pid: int, settle: Callable[[], None] = lambda: None) -> None:
        self.api_pid, self.settle = api_pid, settle
        self.wall: dict[str, list[float]] = {}
        self.client: dict[str, list[float]] = {}
        self.server: dict[str, list[float]] = {}

    def time(self, name: str, fn: Callable[[], object]) -> None:
        self.settle()  # untimed: every row starts from the same state of memory
        c0, s0, t0 = _own_cpu(), _cpu(self.api_pid), time.perf_counter()
        fn()
        t1, c1, s1 = time.perf_counter(), _own_cpu(), _cpu(self.api_pid)
        self.wall.setdefault(name, []).append(t1 - t0)
        self.client.setdefault(name, []).append(c1 - c0)
        self.server.setdefault(name, []).append(s1 - s0)


def _settle(src: Path, scratch: Path, memory: str) -> None:
    """``warm``: a copy of ``src`` made and deleted, so the next row writes into just-freed page cache;
    ``cold``: a wait longer than the VM's free page reporting delay (2 s), so it writes into reported pages."""
    if memory == "warm":
        shutil.copyfile(src, scratch)
        scratch.unlink()
    else:
        time.sleep(3)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while data := f.read(CHUNK):
            yield data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="file size in MiB (default 1024)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where the files and data dir go (default: a temp dir)")
    ap.add_argument("--client", choices=("curl", "httpx"), default="curl" if shutil.which("curl") else "httpx",
                    help="the client of the 'upload'/'download' rows (the 'cli' rows are always arkserve disk)")
    ap.add_argument("--part-mib", type=int, default=None, help="--part-size of arkserve disk put (default: its own)")
    ap.add_argument("--memory", choices=("warm", "cold"), default="warm",
                    help="the state of memory each row starts from (see above; default warm)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="ark-bench-disk-") as tmp:
        run(Path(tmp), args.mib, args.rounds, args.client, args.part_mib, args.memory)


def _curl(method: str, url: str, ak: str, sk: str, *args: str) -> None:
    parts = httpx.URL(url)
    headers = signing.sign_headers(method=method, url=parts.raw_path.decode(), host=f"{parts.host}:{parts.port}",
                                   access_key=ak, secret_key=sk, body=None, now=time.time())
    flags = [f for k, v in headers.items() for f in ("-H", f"{k}: {v}")]
    subprocess.run(["curl", "-sS", "--fail", "-X", method, *flags, *args, url], check=True,
                   stdout=subprocess.DEVNULL)


def _wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/api/v1/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the API did not start")
        time.sleep(0.1)


def run(tmp: Path, mib: int, rounds: int, client: str, part_mib: int | None, memory: str = "warm") -> None:
    src = tmp / "src.bin"
    block = os.urandom(CHUNK)
    with src.open("wb") as f:
        for i in range(mib):
            f.write(block[i % 64:] + block[:i % 64])
    size = src.stat().st_size
    down = tmp / "down.bin"
    env = {**os.environ, "ARKSERVE_CLI_CONFIG": str(tmp / "profiles.yaml")}
    port = _free_port()
    s = settings_mod.load({"data_dir": str(tmp / "data"), "api.port": port}, env=env)
    boot = prepare(s, env=env)
    boot.store.dispose()
    api = subprocess.Popen([sys.executable, "-m", "arkserve", "api", "--data-dir", str(tmp / "data"), "--port",
                            str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    ak, sk = boot.access_key, boot.secret_key
    cli = [sys.executable, "-m", "arkserve", "disk"]
    cli_env = {**env, "ARKSERVE_CLI_CONFIG": str(tmp / "none.yaml"), "ARKSERVE_ENDPOINT": url,
               "ARKSERVE_ACCESS_KEY": ak, "ARKSERVE_SECRET_KEY": sk}
    part = ["--part-size", str(part_mib)] if part_mib else []

    def sh(*argv: str) -> Callable[[], object]:
        return lambda: subprocess.run(argv, env=cli_env, check=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)

    try:
        _wait_up(url)
        sampler = RssSampler(api.pid)
        idle_rss = sampler.rss()
        sampler.start()
        http = httpx.Client(base_url=f"{url}/api/v1/disk", auth=ArkAuth(ak, sk), timeout=httpx.Timeout(600.0))
        raw = RawClient("127.0.0.1", port, ak, sk)
        bare = BareServer(str(src), str(tmp / "bare.bin")) if client == "curl" else None
        if bare is not None:
            bare.start()
        rows = Rows(api.pid, functools.partial(_settle, src, tmp / "scratch.bin", memory))
        for r in range(rounds):
            dst = tmp / f"copy{r}.bin"
            rows.time("cp", sh("cp", str(src), str(dst)))
            dst.unlink()
            rows.time("cp + sync", sh("sh", "-c", f"cp '{src}' '{dst}' && sync '{dst}'"))
            dst.unlink()
            file_url = f"{url}/api/v1/disk/files/bench{r}.bin"

            def upload(r: int = r, file_url: str = file_url) -> None:
                if client == "curl":
                    _curl("PUT", file_url, ak, sk, "-T", str(src))
                    return
                resp = http.put(f"/files/bench{r}.bin", content=_chunks(src), headers={"Content-Length": str(size)})
                assert resp.status_code == 201, resp.text

            def download(r: int = r, file_url: str = file_url) -> None:
                if client == "curl":
                    _curl("GET", file_url, ak, sk, "-o", str(down))
                    return
                with http.stream("GET", f"/files/bench{r}.bin") as resp, down.open("wb") as f:
                    assert resp.status_code == 200
                    for data in resp.iter_raw(CHUNK):
                        f.write(data)

            rows.time("upload", upload)
            rows.time("download", download)
            assert down.stat().st_size == size
            down.unlink()
            raw_path = f"/api/v1/disk/files/raw{r}.bin"
            rows.time("raw put", functools.partial(raw.put, raw_path, str(src)))
            rows.time("raw get", functools.partial(raw.get, raw_path, str(down), durable=False))
            down.unlink()
            rows.time("raw get + fsync", functools.partial(raw.get, raw_path, str(down), durable=True))
            down.unlink()
            http.delete(f"/files/raw{r}.bin")
            rows.time("cli put", sh(*cli, "put", str(src), f"cli{r}.bin", *part))
            rows.time("cli get", sh(*cli, "get", f"cli{r}.bin", str(down)))
            assert down.stat().st_size == size
            down.unlink()
            rows.time("cli start (du)", sh(*cli, "du"))
            http.delete(f"/files/bench{r}.bin")
            http.delete(f"/files/cli{r}.bin")
            if bare is not None:
                bare_url = f"http://127.0.0.1:{bare.port}/bare.bin"
                rows.time("bare upload", functools.partial(_curl, "PUT", bare_url, ak, sk, "-T", str(src)))
                rows.time("bare download", functools.partial(_curl, "GET", bare_url, ak, sk, "-o", str(down)))
                assert (tmp / "bare.bin").stat().st_size == size and down.stat().st_size == size
                (tmp / "bare.bin").unlink()
                down.unlink()
        sampler.stop.set()
        sampler.join()
        http.close()
    finally:
        api.terminate()
        api.wait(10)
    med = {k: statistics.median(v) for k, v in rows.wall.items()}
    print(f"file: {mib} MiB, rounds: {rounds}, memory: {memory}, client of upload/download: {client} "
          f"(medians; MiB/s = size / time; CPU = seconds of CPU, client / API process)")
    print("| transfer | median | min-max | MiB/s | vs cp | vs cp + sync | CPU client / API |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for k, v in rows.wall.items():
        print(f"| {k} | {med[k]:.2f} s | {min(v):.2f}-{max(v):.2f} | {mib / med[k]:.0f} | {med['cp'] / med[k]:.2f}x | "
              f"{med['cp + sync'] / med[k]:.2f}x | {statistics.median(rows.client[k]):.2f} / "
              f"{statistics.median(rows.server[k]):.2f} |")
    print(f"API RSS: idle {idle_rss / 2**20:.0f} MiB, peak during transfers {sampler.peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
