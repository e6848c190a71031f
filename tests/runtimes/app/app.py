"""Trivial HTTP app for the local-runtime tests: GET /env answers the environment as KEY=VALUE lines
(plus TEST_APP_CWD, the working directory).

Usage: app.py serve | ignore-term | child PIDFILE (spawns `sleep 300` and records its pid).
Prints "listening" once bound and "got SIGTERM" when terminated (unless ignoring it).
"""

import http.server
import os
import signal
import subprocess
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        env = {**os.environ, "TEST_APP_CWD": os.getcwd()}
        body = "".join(f"{k}={v}\n" for k, v in sorted(env.items())).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def on_term(signum: int, frame: object) -> None:
    print("got SIGTERM", flush=True)
    sys.exit(0)


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
    signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore-term" else on_term)
    if mode == "child":
        child = subprocess.Popen(["sleep", "300"])
        with open(sys.argv[2], "w") as fh:
            fh.write(str(child.pid))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    print("listening", flush=True)
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
