"""HEAD wherever GET is answered (RFC 9110 §9.3.2): the GET's status and headers, no body.

FastAPI registers only the methods a route declares, so ``HEAD /api/v1/readyz`` was a 405 and uptime checkers and
load balancers that probe with HEAD saw the API as down. :func:`answer_head` gives every GET route of a router a
twin for HEAD (the same handler, dependencies and checks; hidden from the OpenAPI document, where FastAPI would
list a second operation under the same id). The request keeps its method: a signature over ``HEAD`` is verified
as ``HEAD``. Mounts are left alone: the console's static files answer HEAD themselves, and so does WebDAV under
``/dav/``.

:class:`EndAfterHead` ends a HEAD request as soon as its response head is sent: the server drops a HEAD answer's
body anyway, and a streaming GET (``logs?follow=true``) would otherwise go on forever, holding its slot, and a
large one would be produced only to be thrown away.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LEFT_ALONE = ("/dav/", "/dav")  # wsgidav answers HEAD (and every other method) under /dav/ itself


def answer_head(router: APIRouter) -> None:
    """Give each GET route of ``router`` a HEAD twin, once: the API's routers are module-level, shared by every app
    made in the process. Twins are added in the order of their GET routes, so a HEAD finds the route a GET would."""
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    twinned = {(r.path, r.endpoint) for r in routes if "HEAD" in (r.methods or ())}
    for route in routes:
        if "GET" not in (route.methods or ()) or (route.path, route.endpoint) in twinned:
            continue
        router.add_api_route(
            route.path.removeprefix(router.prefix), route.endpoint,  # a route's path holds its router's prefix
            methods=["HEAD"], include_in_schema=False, name=route.name,
            response_model=route.response_model, status_code=route.status_code, dependencies=route.dependencies,
            responses=route.responses, response_class=route.response_class,
            response_model_include=route.response_model_include, response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none)


class EndAfterHead:
    """ASGI middleware: a HEAD request ends once its response head is out (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or scope.get("path", "").startswith(LEFT_ALONE):
            await self.app(scope, receive, send)
            return
        with anyio.CancelScope() as cancel:
            ended = False

            async def send_head(message: Message) -> None:
                nonlocal ended
                if ended:
                    return  # the body of a HEAD answer: nobody gets it
                if message["type"] == "http.response.start":
                    await send(message)
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    ended = True
                    cancel.cancel()  # the app stops at its next wait (a stream's next chunk, a log poll)
                else:
                    await send(message)

            await self.app(scope, receive, send_head)
