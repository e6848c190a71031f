"""A replica app for the asynchronous-inference tests: answers every request with the SHA-256 and size of its
body, its path and method, after ``?delay=<seconds>``; ``?status=<code>`` picks the answer's status."""

import hashlib
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT = int(os.environ.get("PORT", "8000"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        size = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(size) if size else b""
        query = parse_qs(urlsplit(self.path).query)
        if self.path != "/healthz":
            time.sleep(float(query.get("delay", ["0"])[0]))
        out = json.dumps({"sha256": hashlib.sha256(body).hexdigest(), "size": len(body), "path": self.path,
                          "method": self.command, "x_test": self.headers.get("x-test"),
                          "key": self.headers.get("x-ark-access-key")}).encode()
        self.send_response(int(query.get("status", ["200"])[0]))
        self.send_header("Content-Type", "application/json")
        self.send_header("X-App", "async-app")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, fmt: str, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
