"""Security headers on every response: no sniffing, no referrer, no framing, a strict CSP."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CSP_PARTS = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def _policy(**overrides: str) -> str:
    parts = _CSP_PARTS | {k.replace("_", "-"): v for k, v in overrides.items()}
    return "; ".join(f"{name} {value}" for name, value in parts.items())


CONTENT_SECURITY_POLICY = _policy()
"""What every page gets: scripts and styles from this origin only, nothing inline."""
DOCS_CONTENT_SECURITY_POLICY = _policy(script_src="'self' 'unsafe-inline'")
"""The API docs page bootstraps Swagger UI with an inline script; everything else stays as strict."""
DOCS_PREFIX = "/docs"

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def policy_for(path: str) -> str:
    """The Content-Security-Policy for a request path."""
    return DOCS_CONTENT_SECURITY_POLICY if path.startswith(DOCS_PREFIX) else CONTENT_SECURITY_POLICY


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response that does not set them itself.

    A pure ASGI middleware rather than ``BaseHTTPMiddleware``, so streamed answers (Server-Sent
    Events) pass through unbuffered.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response's start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # root_path is the mount prefix when served behind one; policies are keyed by the app's own path.
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", ""))
        if root and path.startswith(root):
            path = path[len(root) :]
        csp = policy_for(path)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in BASE_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if "Content-Security-Policy" not in headers:
                    headers["Content-Security-Policy"] = csp
            await send(message)

        await self.app(scope, receive, send_with_headers)
