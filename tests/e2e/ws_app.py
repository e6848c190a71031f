"""A WebSocket replica app: says which replica it is, then echoes; plain GETs (health checks) get 200."""

import asyncio
import json
import logging
import os
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

PORT = int(os.environ.get("PORT", "8000"))


def health(connection: ServerConnection, request: Request) -> Response | None:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return connection.respond(HTTPStatus.OK, "ok\n")
    return None


async def echo(ws: ServerConnection) -> None:
    await ws.send(json.dumps({"replica": os.environ.get("ARK_REPLICA"), "path": ws.request.path if ws.request else ""}))
    async for msg in ws:
        await ws.send(msg)


logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")  # websockets logs each handshake


async def main() -> None:
    async with serve(echo, "127.0.0.1", PORT, process_request=health) as server:
        print(f"listening on {PORT}", flush=True)
        await server.serve_forever()


asyncio.run(main())
