"""Who may talk to the studio, and which files it may touch.

The studio listens on 127.0.0.1 only, but a page on any web site the user visits can still make
the browser send requests there, and a site whose name resolves to 127.0.0.1 (DNS rebinding)
can even read the answers. So, on every request:

- the ``Host`` header must name this server (``127.0.0.1:PORT`` or ``localhost:PORT``): a
  rebinding site's requests carry its own name;
- an ``Origin`` header, when there is one, must be this server's, and a browser's
  ``Sec-Fetch-Site`` must not say ``cross-site``;
- the per-start token must come with it: in the URL the browser is opened with (once; it is then
  kept in a cookie of this port's own name), as the cookie, or as the ``X-Studio-Token``
  header. Requests that change anything (not GET or HEAD) need the header: another site cannot
  set it without a CORS preflight, which the studio never answers.

Files: :func:`run_file` is the only way from a name in a request to a path, and it gives only
regular files inside the run folder (no ``..``, no absolute or hidden names, no link that leads
out). The studio writes only the run folder's well-known names (lyrics.txt, hints.png) through
the pipeline's atomic rename, which replaces a link there rather than following it.
"""

from __future__ import annotations

import hmac
import os
import secrets
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

from acgmake.errors import UserError

#: The header the page sends the token in.
TOKEN_HEADER = "x-studio-token"
#: Methods that only read.
SAFE_METHODS = frozenset({"GET", "HEAD"})


def new_token() -> str:
    """A fresh random token for one start of the studio (256 bits)."""
    return secrets.token_urlsafe(32)


def cookie_name(port: int) -> str:
    """The token cookie's name: cookies are shared by every port of 127.0.0.1, so each studio
    has its own (two studios at once must not log each other out)."""
    return f"acgmake_studio_{port}"


def allowed_hosts(port: int) -> frozenset[str]:
    """The ``Host`` values a browser sends to this server."""
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def allowed_origins(port: int) -> frozenset[str]:
    return frozenset(f"http://{host}" for host in allowed_hosts(port))


def _same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class Guard:
    """ASGI middleware: refuses (403, one line of text) any HTTP request that fails the checks
    in this module's docstring; lets the others through."""

    def __init__(self, app, *, token: str, port: int) -> None:
        self.app = app
        self.token = token
        self.port = port
        self.hosts = allowed_hosts(port)
        self.origins = allowed_origins(port)
        self.cookie = cookie_name(port)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets
            return
        why = self.refusal(scope)
        if why:
            await _text(send, 403, why)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope) -> str:
        """Why the request is refused, or "" when it may go on."""
        headers = {}
        for name, value in scope.get("headers", []):
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        if headers.get("host") not in self.hosts:
            return "refused: this studio answers only to 127.0.0.1 and localhost on its port"
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return "refused: a request from another site"
        if headers.get("sec-fetch-site") == "cross-site":
            return "refused: a request from another site"
        if _same(headers.get(TOKEN_HEADER), self.token):
            return ""
        if scope["method"] not in SAFE_METHODS:
            return "refused: no studio token (open the address acgmake studio printed)"
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if _same((query.get("token") or [None])[0], self.token):
            return ""
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is no token
            return "refused: no studio token (open the address acgmake studio printed)"
        morsel = cookie.get(self.cookie)
        if morsel is not None and _same(morsel.value, self.token):
            return ""
        return "refused: no studio token (open the address acgmake studio printed)"


async def _text(send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def run_file(folder: Path, name: str) -> Path:
    """The regular file ``name`` (a relative path, ``/``-separated) inside the run folder
    ``folder``. UserError when the name is absolute, has ``..``, a hidden part or a backslash,
    or leads (through links too) anywhere but a file inside the folder."""
    refused = UserError(f"{name!r} is not a file of the run folder")
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        raise refused
    parts = name.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise refused
    root = Path(os.path.realpath(folder))
    path = Path(os.path.realpath(root.joinpath(*parts)))
    if not path.is_relative_to(root) or path == root or not path.is_file():
        raise refused
    return path
