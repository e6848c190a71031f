"""A replica app that is slow to start (``START_DELAY_S`` before it listens) and, optionally, slow to answer
(``DELAY_S`` per request): for the autoscaling tests and bench/coldstart.py. Answers like tests/reconciler/app.py.

On SIGTERM (a scale-in drains it, then stops it) it stops accepting and exits once the requests it is serving are
answered, as a real server does: a slow request that reached it just before it left routing is not cut off."""

import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

time.sleep(float(os.environ.get("START_DELAY_S", "0")))  # loading a model, say


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        global inflight
        with lock:
            inflight += 1
        try:
            self._answer()
        finally:
            with lock:
                inflight -= 1

    def _answer(self) -> None:
        if os.environ.get("DELAY_S") and self.path != "/healthz":
            time.sleep(float(os.environ["DELAY_S"]))
        body = json.dumps({"replica": os.environ.get("ARK_REPLICA"), "version": os.environ.get("VERSION", "1"),
                           "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # a cold start releases hundreds of held requests at once
    daemon_threads = True


inflight = 0
lock = threading.Lock()
server = Server(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
server.serve_forever()  # until SIGTERM
while inflight:
    time.sleep(0.01)
