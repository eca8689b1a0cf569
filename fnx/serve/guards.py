"""ASGI middleware in front of every route: the body-size limit and the optional bearer token."""

from __future__ import annotations

import hmac
import json

HEALTH_PATHS = ("/v2/health/live", "/v2/health/ready")  # probes need no token (Kubernetes sends none)


class BodyTooLarge(Exception):
    """The request body passed the server's limit (413)."""

    def __init__(self, limit: int):
        super().__init__(f"the request body is over the server's limit of {limit} bytes (fnx serve --max-body-mb)")


async def send_error(send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Answer status with the protocol's {"error": message} body (JSON)."""
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse a body over `limit` bytes: at once by its Content-Length, or as it streams in (BodyTooLarge is
    raised from `receive` inside the route, which answers 413)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await send_error(send, 413, str(BodyTooLarge(self.limit)), [(b"connection", b"close")])
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        return await self.app(scope, limited, send)


class BearerToken:
    """Require `Authorization: Bearer TOKEN` on every path but the health probes (401 otherwise)."""

    def __init__(self, app, token: str | None):
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope, receive, send):
        if self.expected is None or scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):
            why = "no Authorization header" if not given else "the bearer token is not the server's"
            return await send_error(send, 401, f"{why}: send 'Authorization: Bearer TOKEN' with the token of "
                                               f"fnx serve --token-file", [(b"www-authenticate", b"Bearer")])
        return await self.app(scope, receive, send)
