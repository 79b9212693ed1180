"""ASGI middleware that refuses request bodies above a size limit (413) before reading them."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException


class _TooLarge(HTTPException):
    """Raised from receive(); FastAPI passes HTTPExceptions through to the app's error handler."""

    def __init__(self, message: str):
        super().__init__(413, message)


class BodyLimit:
    """Reject bodies over ``max_bytes``: by Content-Length up front, or while a chunked body streams."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = int(max_bytes)

    async def _reply(self, send, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        too_large = f"request body larger than the limit of {limit} bytes; send fewer items per request"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return await self._reply(send, 400, "the Content-Length header is not a number")
                if length > limit:
                    return await self._reply(send, 413, too_large)
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(too_large)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reply(send, 413, too_large)
