"""Who may read the worker's views: a bearer token, read from a file.

``/backlog``, ``/incidents/*`` and ``/demand`` show incident ids, areas, ages and
terminal pseudonyms; ``/internal/*`` serves the same to other workers. They need
``Authorization: Bearer <token>`` when ``DEMANDFLOW_VIEW_TOKEN_FILE`` names a file
holding the token (``/metrics`` too with ``DEMANDFLOW_METRICS_REQUIRE_TOKEN``).
``/healthz`` and ``/livez`` stay open for probes. Without a token the worker
must listen on loopback only, unless ``DEMANDFLOW_ALLOW_UNAUTHENTICATED_VIEWS``
says otherwise on purpose (docs/security.md).

The token is compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from pipeline.errors import ConfigError

GUARDED = ("/backlog", "/incidents", "/demand", "/internal")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def read_token(path: Path | None) -> str | None:
    """The token in ``path`` (None: no file configured); a clear error if unusable."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"DEMANDFLOW_VIEW_TOKEN_FILE: cannot read {path}: "
                          f"{exc.strerror or type(exc).__name__}") from None
    if len(token) < 16:
        raise ConfigError(f"DEMANDFLOW_VIEW_TOKEN_FILE: {path} holds no token of at least "
                          "16 characters")
    return token


def check_exposure(web_host: str, token: str | None, allow_unauthenticated: bool) -> str:
    """Refuse views open to a network without a token; say how they are protected."""
    if token is not None:
        return f"views on {web_host} require a bearer token (DEMANDFLOW_VIEW_TOKEN_FILE)"
    if web_host in LOOPBACK:
        return (f"views on {web_host} only, without authentication "
                "(set DEMANDFLOW_VIEW_TOKEN_FILE to serve them beyond this machine)")
    if not allow_unauthenticated:
        raise ConfigError(f"DEMANDFLOW_WEB_HOST: {web_host} would serve incident data to "
                          "anyone who can reach it: set DEMANDFLOW_VIEW_TOKEN_FILE, or "
                          "DEMANDFLOW_ALLOW_UNAUTHENTICATED_VIEWS=true to do so on purpose")
    return f"views on {web_host} WITHOUT authentication (DEMANDFLOW_ALLOW_UNAUTHENTICATED_VIEWS)"


def needs_token(path: str, metrics_too: bool) -> bool:
    return path.startswith(GUARDED) or (metrics_too and path.startswith("/metrics"))


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries exactly this bearer token."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())


Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def middleware(token: str | None, metrics_too: bool) -> Middleware:
    """An aiohttp middleware answering 401 to a guarded path without the token."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and needs_token(request.path, metrics_too) and \
                not bearer_ok(request.headers.get("Authorization"), token):
            return web.json_response({"error": "a bearer token is required"}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="demandflow"'})
        return await handler(request)

    return guard
