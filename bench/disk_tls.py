"""Network disk throughput over TLS: the same 1 GiB up and down as ``bench/disk.py``, with the API served over
HTTPS (uvicorn's TLS, a throwaway self-signed certificate), against ``cp`` in the same run.

    .venv/bin/python bench/disk_tls.py                 # 1 GiB, 3 rounds
    .venv/bin/python bench/disk_tls.py --mib 64 --rounds 1

Rows: ``cp``; ``curl`` (OpenSSL) against the API; ``arkserve disk put|get`` (on https:// no zero-copy: every
byte is encrypted and decrypted in the processes, the CLI's through one reused buffer); and ``openssl speed``'s
single-core AES-128-GCM rate, the cipher these connections negotiate, as the crypto-only ceiling. The API's
own deployment serves plain HTTP on 127.0.0.1; this says what a TLS hop in front of it bounds.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import disk

from arkserve import settings as settings_mod
from arkserve.bootstrap import prepare

SERVE = """
import sys, uvicorn
from arkserve import settings as settings_mod
from arkserve.api import server as api_server
from arkserve.api.app import create_app
from arkserve.auth.vault import load_master_key
from arkserve.store.db import open_store
data, port, cert, key = sys.argv[1:5]
s = settings_mod.load({"data_dir": data, "api.port": int(port)})
store = open_store(s.database_url, busy_timeout_ms=s.store.busy_timeout_ms)
config = api_server.config(create_app(s, store, load_master_key(s.data_dir, None, create=False)), s,
                           log_level="warning")
config.ssl_certfile, config.ssl_keyfile = cert, key
uvicorn.Server(config).run()
"""


def aes_gcm_mib_s() -> float:
    """OpenSSL's single-core AES-128-GCM rate on 16 KiB blocks (one TLS record), MiB/s."""
    out = subprocess.run(["openssl", "speed", "-seconds", "2", "-bytes", "16384", "-evp", "aes-128-gcm"],
                         capture_output=True, text=True, check=True).stdout
    kbytes = float(re.findall(r"aes-128-gcm\s+([\d.]+)k", out, re.IGNORECASE)[-1])
    return kbytes * 1000 / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="ark-bench-disk-tls-") as tmp:
        run(Path(tmp), args.mib, args.rounds)


def run(tmp: Path, mib: int, rounds: int) -> None:
    src, down = tmp / "src.bin", tmp / "down.bin"
    block = os.urandom(disk.CHUNK)
    with src.open("wb") as f:
        for i in range(mib):
            f.write(block[i % 64:] + block[:i % 64])
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    env = {**os.environ, "ARKSERVE_CLI_CONFIG": str(tmp / "profiles.yaml")}
    port = disk._free_port()
    s = settings_mod.load({"data_dir": str(tmp / "data"), "api.port": port}, env=env)
    boot = prepare(s, env=env)
    boot.store.dispose()
    url = f"https://127.0.0.1:{port}"
    ak, sk = boot.access_key, boot.secret_key
    (tmp / "cli.yaml").write_text(yaml.safe_dump({"profiles": {"default": {
        "endpoint": url, "access_key": ak, "secret_key": sk, "ca_bundle": str(cert)}}}))
    cli_env = {**env, "ARKSERVE_CLI_CONFIG": str(tmp / "cli.yaml")}
    for var in ("ARKSERVE_ENDPOINT", "ARKSERVE_ACCESS_KEY", "ARKSERVE_SECRET_KEY"):
        cli_env.pop(var, None)
    api = subprocess.Popen([sys.executable, "-c", SERVE, str(tmp / "data"), str(port), str(cert), str(key)],
                           env=env)
    cli = [sys.executable, "-m", "arkserve", "disk"]

    def sh(*argv: str) -> Callable[[], object]:
        return lambda: subprocess.run(argv, env=cli_env, check=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v1/healthz", verify=str(cert)).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the API did not start")
            time.sleep(0.1)
        rows = disk.Rows(api.pid)
        tls = ("--cacert", str(cert))
        for r in range(rounds):
            rows.time("cp", sh("cp", str(src), str(tmp / "copy.bin")))
            (tmp / "copy.bin").unlink()
            file_url = f"{url}/api/v1/disk/files/bench{r}.bin"
            rows.time("curl upload (TLS)", functools.partial(disk._curl, "PUT", file_url, ak, sk, *tls, "-T", str(src)))
            rows.time("curl download (TLS)", functools.partial(disk._curl, "GET", file_url, ak, sk, *tls, "-o",
                                                               str(down)))
            down.unlink()
            rows.time("cli put (TLS)", sh(*cli, "put", str(src), f"cli{r}.bin"))
            rows.time("cli get (TLS)", sh(*cli, "get", f"cli{r}.bin", str(down)))
            assert down.stat().st_size == src.stat().st_size
            down.unlink()
            for name in (f"bench{r}.bin", f"cli{r}.bin"):
                subprocess.run([*cli, "rm", "--yes", name], env=cli_env, check=True, stdout=subprocess.DEVNULL)
    finally:
        api.terminate()
        api.wait(10)
    med = {k: statistics.median(v) for k, v in rows.wall.items()}
    print(f"file: {mib} MiB, rounds: {rounds}, API over TLS (medians; CPU = seconds, client / API process)")
    print("| transfer | median | min-max | MiB/s | vs cp | CPU client / API |")
    print("|---|---:|---:|---:|---:|---:|")
    for k, v in rows.wall.items():
        print(f"| {k} | {med[k]:.2f} s | {min(v):.2f}-{max(v):.2f} | {mib / med[k]:.0f} | {med['cp'] / med[k]:.2f}x | "
              f"{statistics.median(rows.client[k]):.2f} / {statistics.median(rows.server[k]):.2f} |")
    print(f"openssl speed aes-128-gcm, one core, 16 KiB records: {aes_gcm_mib_s():.0f} MiB/s")


if __name__ == "__main__":
    main()
