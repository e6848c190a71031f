"""A tiny replica app for reconciler and gateway tests: serves its identity and what it sees of its model; can be
told to hang, crash or answer slowly.

On SIGTERM (sent once a replica has left routing and the gateways said so) it stops accepting and exits once the
requests it is answering are answered, as a real server does (a request hung on purpose is not waited for)."""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8000"))
if os.environ.get("CRASH_AT_START"):
    print("crashing on purpose: bad config", flush=True)
    sys.exit(int(os.environ["CRASH_AT_START"]))
if os.environ.get("IGNORE_PORT"):
    PORT = int(os.environ["IGNORE_PORT"])


def model_view() -> dict:
    """``ARK_MODEL_DIR`` and the content of the file ``$MODEL_FILE`` read there (or why it could not be read)."""
    model_dir = os.environ.get("ARK_MODEL_DIR")
    try:
        with open(os.path.join(model_dir or "", os.environ.get("MODEL_FILE", ""))) as f:
            return {"model_dir": model_dir, "content": f.read()}
    except OSError as exc:
        return {"model_dir": model_dir, "error": str(exc)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        hang = os.environ.get("HANG_FILE")
        if hang and os.path.exists(hang):
            time.sleep(3600)
        global inflight
        with lock:
            inflight += 1
        try:
            self._answer()
        finally:
            with lock:
                inflight -= 1

    def _answer(self) -> None:
        if os.environ.get("DELAY_S") and self.path != "/healthz":  # a slow app: each request takes this long
            print(f"delaying {self.path}", flush=True)
            time.sleep(float(os.environ["DELAY_S"]))
        if self.path == "/model":  # what this replica sees of its model
            body = json.dumps(model_view()).encode()
        else:
            body = json.dumps({"replica": os.environ.get("ARK_REPLICA"), "service": os.environ.get("ARK_SERVICE"),
                               "version": os.environ.get("VERSION", "1"), "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{self.command} {self.path}", flush=True)


inflight = 0
lock = threading.Lock()
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
print(f"listening on {PORT} as {os.environ.get('ARK_REPLICA')}", flush=True)
server.serve_forever()  # until SIGTERM
while inflight:
    time.sleep(0.01)
