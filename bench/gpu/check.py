"""The GPU check (run by check.sh on a machine with an NVIDIA GPU): capacity and placement on real hardware.

1. The inventory arkserve reads through NVML (must show a GPU; without one: exit 3 with the reason).
2. ``arkserve up`` (local runtime, a temp data dir and HOME); a 1-GPU instance type and a half-GPU one.
3. A replica of the 1-GPU type sees exactly its index (CUDA_VISIBLE_DEVICES, torch.cuda.device_count/name).
   On a 1-GPU host a second one waits as Unschedulable ("held by service gpu-a") and starts once the first is
   deleted; two half-GPU replicas share GPU 0, each told its share (ARK_GPU_MEMORY_MB).
4. examples/flowers (its local-runtime path: the folder as the image, ``python3 infer.py``) on the 1-GPU type:
   five images classified through the signed endpoint, each answer naming the device (cuda:N).
Exit 0 only when every step passed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path.cwd()
HERE = Path(__file__).resolve().parent
WORK = Path(tempfile.mkdtemp(prefix="ark-gpu-check-"))
ENV = {**os.environ, "HOME": str(WORK / "home"), "ARKSERVE_CLI_CONFIG": str(WORK / "profiles.yaml")}
T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[gpu-check {time.monotonic() - T0:6.1f}s] {text}", flush=True)


def fail(text: str, code: int = 1) -> None:
    say("FAIL: " + text)
    raise SystemExit(code)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ark(*args: str, check: bool = True, timeout: float = 240) -> str:
    proc = subprocess.run([sys.executable, "-m", "arkserve", *args], env=ENV, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        fail(f"arkserve {' '.join(args)} exited {proc.returncode}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    return proc.stdout


def service(name: str) -> dict[str, Any]:
    return dict(json.loads(ark("service", "get", name, "-o", "json")))


def wait_for(what: str, cond: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.5)
    fail(f"timed out after {timeout:g}s waiting for {what}")


def signed(method: str, url: str, **kwargs: Any) -> Any:
    import requests

    from arkserve.sdk.auth import ArkRequestsAuth
    from arkserve.sdk.profiles import config_path, load_all

    p = load_all(config_path(ENV))["default"]
    r = requests.request(method, url, auth=ArkRequestsAuth(p.access_key, p.secret_key),
                         verify=str(WORK / "data" / "tls" / "ca.pem"), timeout=60, **kwargs)
    r.raise_for_status()
    return r.json()


def create(name: str, image: Path, command: str, itype: str, port: int = 8000, health: str = "/healthz",
           wait: bool = True) -> None:
    args = ["service", "create", name, "--image", str(image), "--port", str(port), "--command", command,
            "--instance-type", itype, "--health-path", health]
    ark(*args, *(["--wait", "--timeout", "180"] if wait else []))


def seen_by(name: str) -> dict[str, Any]:
    seen = dict(signed("GET", service(name)["endpoint"] + "/"))
    say(f"{name} sees {json.dumps(seen)}")
    return seen


def inventory() -> Any:
    from arkserve.capacity.inventory import read_inventory

    inv = read_inventory()
    say(f"inventory: host {inv.name}, {inv.cpus} CPUs, {inv.memory_mb} MiB memory")
    for g in inv.gpus:
        say(f"  GPU {g.index}: {g.model}, {g.memory_mb} MiB, {g.uuid}")
    if not inv.gpus:
        fail(f"no GPU: {inv.gpu_error or 'NVML reports none'}", code=3)
    return inv


def start_platform() -> subprocess.Popen[bytes]:
    (WORK / "home").mkdir()
    env = {**ENV, "ARKSERVE_GATEWAY_ADMIN_PORT": str(free_port()), "ARKSERVE_REGISTRY_PORT": str(free_port()),
           "ARKSERVE_SANDBOX_PATHS": os.environ.get("ARK_CHECK_SITE", "")}
    cmd = [sys.executable, "-m", "arkserve", "up", "--data-dir", str(WORK / "data"), "--api-port", str(free_port()),
           "--runtime", "local", "--gateway-port-base", str(21000 + os.getpid() % 5000)]
    say("starting " + " ".join(cmd[1:]))
    up = subprocess.Popen(cmd, env=env, stdout=open(WORK / "up.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.monotonic() + 90
    while subprocess.run([sys.executable, "-m", "arkserve", "whoami"], env=ENV, capture_output=True,
                         check=False).returncode != 0:
        if up.poll() is not None or time.monotonic() > deadline:
            print((WORK / "up.log").read_text()[-3000:])
            fail("arkserve up did not come up")
        time.sleep(0.5)
    say("platform up")
    return up


def whole_gpus(inv: Any) -> None:
    create("gpu-a", HERE, "python3 gpu_app.py", "gpu.check")
    a = seen_by("gpu-a")
    held = [g for g in json.loads(ark("host", "list", "-o", "json"))[0]["gpus"] if g["holders"]]
    index = str(held[0]["index"])
    model = inv.gpus[int(index)].model
    if a["CUDA_VISIBLE_DEVICES"] != index or a["device_count"] != 1 or not a["names"] \
            or (a["names"][0] not in model and model not in a["names"][0]):
        fail(f"gpu-a should see exactly GPU {index} ({model}), saw {a}")
    if not a.get("matmul_ok"):
        fail("a matrix product on the replica's GPU went wrong")
    say(f"OK: gpu-a sees exactly GPU {index}")
    create("gpu-b", HERE, "python3 gpu_app.py", "gpu.check", wait=len(inv.gpus) > 1)
    if len(inv.gpus) == 1:
        svc = wait_for("gpu-b Unschedulable", lambda: (s := service("gpu-b"))["reason"] == "Unschedulable" and s)
        say(f"gpu-b: {svc['status']}/{svc['reason']}: {svc['message']}")
        if "0 of 1 free; held by service gpu-a" not in svc["message"]:
            fail("the Unschedulable message should say who holds the GPU")
        ark("service", "delete", "gpu-a", "--yes", "--wait")
        wait_for("gpu-b ready after gpu-a stopped", lambda: service("gpu-b")["ready"] == 1, 180)
    b = seen_by("gpu-b")
    if b["device_count"] != 1 or b["CUDA_VISIBLE_DEVICES"] is None:
        fail(f"gpu-b should see exactly one GPU, saw {b}")
    say(f"OK: gpu-b sees exactly GPU {b['CUDA_VISIBLE_DEVICES']}")
    print(ark("host", "list"))
    for name in ("gpu-a", "gpu-b"):
        ark("service", "delete", name, "--yes", "--wait", check=False)


def shared_gpu(inv: Any) -> None:
    create("half-a", HERE, "python3 gpu_app.py", "gpu.half")
    create("half-b", HERE, "python3 gpu_app.py", "gpu.half")
    a, b = seen_by("half-a"), seen_by("half-b")
    share = str(int(inv.gpus[0].memory_mb * 0.5))
    if a["CUDA_VISIBLE_DEVICES"] != b["CUDA_VISIBLE_DEVICES"] or {a["ARK_GPU_MEMORY_MB"], b["ARK_GPU_MEMORY_MB"]} \
            != {share} or a["device_count"] != 1:
        fail(f"two halves should share one GPU, each told {share} MiB: saw {a} and {b}")
    say(f"OK: half-a and half-b share GPU {a['CUDA_VISIBLE_DEVICES']}, {share} MiB each")
    print(ark("host", "list"))
    for name in ("half-a", "half-b"):
        ark("service", "delete", name, "--yes", "--wait", check=False)


def flowers() -> None:
    app = ROOT / "examples" / "flowers"
    if not (app / "flower-model.pth").is_file():
        say("writing the demo weights (make_weights.py)")
        subprocess.run([sys.executable, str(app / "make_weights.py"), "--out", str(app / "flower-model.pth")],
                       check=True, cwd=app, env=ENV)
    create("flowers", app, "python3 infer.py", "gpu.check", port=27777)
    endpoint = service("flowers")["endpoint"]
    health = signed("GET", endpoint + "/healthz")
    say(f"flowers /healthz: {json.dumps(health)}")
    images = sorted(p for p in (app / "images").iterdir() if p.suffix == ".jpg")
    for image in images:
        with image.open("rb") as f:
            answer = signed("POST", endpoint + "/flowers", files={"content": (image.name, f, "image/jpeg")})
        say(f"  {image.name}: {answer['class']} ({answer['prob']}) on {answer.get('device')}")
        if not str(answer.get("device", "")).startswith("cuda"):
            fail("flowers did not infer on CUDA")
    if not images:
        fail("no test images in examples/flowers/images")
    say(f"OK: flowers classified {len(images)} images on {health.get('device')}")
    ark("service", "delete", "flowers", "--yes", "--wait", check=False)


def main() -> None:
    inv = inventory()
    up = start_platform()
    try:
        print(ark("host", "list"))
        ark("instance-type", "create", "gpu.check", "--cpus", "1", "--memory-mb", "2048", "--gpus", "1")
        ark("instance-type", "create", "gpu.half", "--cpus", "1", "--memory-mb", "2048", "--gpu-fraction", "0.5")
        whole_gpus(inv)
        shared_gpu(inv)
        flowers()
        say("ALL OK")
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
        log = (WORK / "up.log").read_text(errors="replace")
        print("---- arkserve up log (last 60 lines) ----\n" + "\n".join(log.splitlines()[-60:]))


if __name__ == "__main__":
    main()
