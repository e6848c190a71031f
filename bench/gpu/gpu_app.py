"""The GPU check's replica: says which GPUs it was given and what PyTorch sees of them (GET / and /healthz)."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

SEEN = {
    "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "CUDA_DEVICE_ORDER": os.environ.get("CUDA_DEVICE_ORDER"),
    "ARK_GPU_MEMORY_MB": os.environ.get("ARK_GPU_MEMORY_MB"),
    "device_count": torch.cuda.device_count(),
    "names": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
}
if SEEN["device_count"]:
    x = torch.ones(1024, 1024, device="cuda")
    SEEN["matmul_ok"] = bool((x @ x)[0, 0].item() == 1024)
print("gpu_app sees", json.dumps(SEEN), flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(SEEN).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Handler).serve_forever()
