"""The token check of a server other hosts can reach (``run_web --token``).

Scripts send ``Authorization: Bearer <token>``; a browser opens ``/?token=<token>`` once
and gets it as an HttpOnly cookie, which its later requests, event streams and WebSockets
carry by themselves."""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

COOKIE = "monomocap_token"
Scope = dict[str, Any]


class TokenGate:
    """ASGI middleware: every HTTP request and WebSocket must carry the token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    def _given(self, scope: Scope) -> tuple[str, bool]:
        """The token the request carries, and whether it came in the query string."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        cookie = SimpleCookie(headers.get("cookie", ""))
        if COOKIE in cookie:
            return cookie[COOKIE].value, False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return (query.get("token") or [""])[0], True

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        given, from_query = self._given(scope)
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            body = json.dumps({"error": "missing or wrong token: open /?token=... once, or "
                               "send Authorization: Bearer ..."}).encode()  # fmt: skip
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            return await send({"type": "http.response.body", "body": body})
        if not from_query or scope["type"] != "http":
            return await self.app(scope, receive, send)
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"set-cookie", cookie)],
                }
            await send(message)

        await self.app(scope, receive, send_with_cookie)
