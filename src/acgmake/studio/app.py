"""The studio's web application: the page, and a small JSON API over :class:`Studio`.

Every route is behind :class:`acgmake.studio.security.Guard`. Stage runs are blocking work, so
their routes are plain functions, which Starlette runs in its thread pool; the page stays
responsive and a second run in the same folder is answered 409 (busy) at once.
"""

from __future__ import annotations

import contextlib
import io
import time
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from acgmake.errors import UserError
from acgmake.studio.security import TOKEN_HEADER, Guard, cookie_name, run_file
from acgmake.studio.work import Busy, Studio, readings

#: The page's own files, served from the package (the only names served from there).
#: The font the page shows lyrics and readings in, served from the clip's own font file.
FONT_NAME = "lyrics.ttf"
STATIC = {
    "studio.js": "text/javascript; charset=utf-8",
    "studio.css": "text/css; charset=utf-8",
}
#: Content types of the run folder's files, by extension; anything else is a download.
MEDIA_TYPES = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".wav": "audio/wav",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".musicxml": "application/vnd.recordare.musicxml+xml",
    ".mid": "audio/midi",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".lab": "text/plain; charset=utf-8",
    ".ass": "text/plain; charset=utf-8",
    ".srt": "text/plain; charset=utf-8",
    ".ora": "image/openraster",
}
#: Headers on every answer: nothing from the run folder runs as a page's script, and the page
#: loads nothing from anywhere else.
SAFETY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "cache-control": "no-store",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: The largest request body the studio reads (a hints layer of a 4096 px picture is far less).
MAX_BODY_BYTES = 16 * 1024 * 1024


def _static(name: str) -> bytes:
    return resources.files("acgmake.studio").joinpath("static", name).read_bytes()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _handled(function):
    """Turn a user's mistake into a JSON answer of one line (409 for a busy folder)."""

    async def endpoint(request: Request) -> Response:
        try:
            response = await function(request)
        except Busy as busy:
            response = _error(409, busy.message)
        except UserError as error:
            response = _error(400, error.message)
        except _TooLarge as large:
            response = _error(413, str(large))
        for name, value in SAFETY_HEADERS.items():  # an answer may set a stricter one
            response.headers.setdefault(name, value)
        return response

    endpoint.__name__ = function.__name__
    return endpoint


class _TooLarge(Exception):
    pass


async def _body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request's body, refusing (413) one over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _TooLarge(f"the upload is larger than {limit // 1024} KB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"the upload is larger than {limit // 1024} KB")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> dict[str, Any]:
    import json

    try:
        value = json.loads(await _body(request, 64 * 1024) or b"{}")
    except ValueError:
        raise UserError("the request is not JSON") from None
    if not isinstance(value, dict):
        raise UserError("the request is not a JSON object")
    return value


def _number(value: Any, name: str, low: float, high: float, *, whole: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{name} must be a number")
    if whole and not float(value).is_integer():
        raise UserError(f"{name} must be a whole number")
    if not low <= value <= high:
        raise UserError(f"{name} must be from {low:g} to {high:g}")
    return int(value) if whole else float(value)


def check_hints_png(data: bytes, size: tuple[int, int]) -> bool:
    """Check an uploaded hints layer before it is saved: a real PNG (its magic bytes and PIL's
    decoder agree), within the picture limit, ``size`` (width, height) of the picture it is
    painted on, with transparency. Returns whether it holds any hint (an erased layer holds
    none). UserError saying what is wrong otherwise."""
    import numpy as np
    from PIL import Image

    from acgmake.image.hints import MIN_ALPHA
    from acgmake.image.picture import MAX_PICTURE_PIXELS

    if not data.startswith(PNG_MAGIC):
        raise UserError("the hints layer is not a PNG")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            width, height = image.size
            if width * height > MAX_PICTURE_PIXELS:
                raise UserError(f"the hints layer is {width}x{height} pixels, too large")
            if (width, height) != tuple(size):
                raise UserError(
                    f"the hints layer is {width}x{height} but the picture is "
                    f"{size[0]}x{size[1]}; reload the page"
                )
            image.load()
            if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
                raise UserError("the hints layer has no transparency")
            alpha = np.asarray(image.convert("RGBA"))[..., 3]
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"the hints layer is not a PNG acgmake can read ({error})") from None
    return bool((alpha >= MIN_ALPHA).any())


def picture_size(path: Path) -> tuple[int, int]:
    """(width, height) of the picture at ``path``, from its header."""
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def create_app(studio: Studio, *, token: str, port: int) -> Guard:
    """The studio's ASGI application for ``studio``, answering only on ``port`` with ``token``."""

    async def index(request: Request) -> Response:
        if "token" in request.query_params:
            # Keep the token in a cookie and take it out of the address bar and history.
            response: Response = RedirectResponse("/", status_code=303)
            response.set_cookie(
                cookie_name(port), token, httponly=True, samesite="strict", path="/"
            )
        else:
            page = _static("index.html").decode("utf-8").replace("{{token}}", token)
            response = Response(page, media_type="text/html; charset=utf-8")
        response.headers.update(SAFETY_HEADERS)
        return response

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == FONT_NAME:
            # The clip's own font (IPAexGothic, shipped by matplotlib-fontja): kana and kanji
            # show on a machine without a Japanese font, offline.
            from acgmake.video.text import font_path

            response = Response(font_path().read_bytes(), media_type="font/ttf")
            response.headers.update(SAFETY_HEADERS)
            response.headers["Cache-Control"] = "max-age=86400"
            return response
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        response = Response(_static(name), media_type=STATIC[name])
        response.headers.update(SAFETY_HEADERS)
        return response

    @_handled
    async def state(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(studio.state))

    @_handled
    async def files(request: Request) -> Response:
        path = run_file(studio.folder, request.path_params["name"])
        media_type = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
        # FileResponse answers Range requests (the audio and video elements seek with them).
        return FileResponse(path, media_type=media_type)

    @_handled
    async def lyrics(request: Request) -> Response:
        path = studio.file("lyrics")
        if request.method == "GET":
            text = path.read_text(encoding="utf-8") if path.is_file() else ""
            return JSONResponse({"text": text})
        data = await _body(request, studio.registry.artifact("lyrics").max_bytes or 65536)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError("the lyrics are not UTF-8 text") from None
        await run_in_threadpool(studio.write, "lyrics", data)
        try:
            found = await run_in_threadpool(readings, data.decode("utf-8"))
        except UserError as error:
            return JSONResponse({"saved": True, "readings": [], "problem": error.message})
        return JSONResponse({"saved": True, "readings": found, "problem": ""})

    @_handled
    async def reading(request: Request) -> Response:
        text = (await _json(request)).get("text", "")
        if not isinstance(text, str):
            raise UserError("text must be a string")
        return JSONResponse({"readings": await run_in_threadpool(readings, text)})

    @_handled
    async def compose(request: Request) -> Response:
        started = time.monotonic()
        await run_in_threadpool(studio.make, "score")
        return JSONResponse({"seconds": round(time.monotonic() - started, 2)})

    @_handled
    async def render(request: Request) -> Response:
        target = (await _json(request)).get("target", "clip")
        if target not in ("clip", "song"):
            raise UserError("target must be clip or song")
        job = studio.start(target)
        return JSONResponse(job.as_dict(), status_code=202)

    @_handled
    async def job(request: Request) -> Response:
        return JSONResponse({"job": studio.job_state()})

    @_handled
    async def hints(request: Request) -> Response:
        started = time.monotonic()
        if request.method == "DELETE":
            await run_in_threadpool(studio.write, "hints", None, then=("colored",))
        else:
            limit = min(MAX_BODY_BYTES, studio.registry.artifact("hints").max_bytes or 0)
            data = await _body(request, limit)
            character = studio.file("character")
            if not character.is_file():
                raise UserError("there is no character.png yet; choose a character first")
            size = picture_size(character)
            has_hints = await run_in_threadpool(check_hints_png, data, size)
            await run_in_threadpool(
                studio.write,
                "hints",
                data if has_hints else None,
                check=lambda path: _read_back(path, size),
                then=("colored",),
            )
        return JSONResponse({"seconds": round(time.monotonic() - started, 3)})

    @_handled
    async def character_preview(request: Request) -> Response:
        seed = _number(_int(request.path_params["seed"]), "seed", 0, 2**32 - 1, whole=True)
        truncation = _number(
            float(request.query_params.get("truncation", "0.7")), "truncation", 0, 1.5
        )
        png = await run_in_threadpool(studio.character_preview, seed, truncation)
        return Response(png, media_type="image/png")

    @_handled
    async def character(request: Request) -> Response:
        given = await _json(request)
        seed = _number(given.get("seed"), "seed", 0, 2**32 - 1, whole=True)
        truncation = _number(given.get("truncation", 0.7), "truncation", 0, 1.5)
        asked = given.get("edit") or {}
        if not isinstance(asked, dict) or set(asked) - {"mouth", "eyes"}:
            raise UserError('edit must be {"mouth": number, "eyes": number}')
        edit = ",".join(
            f"{name}={_number(value, name, -2, 2):.2f}"
            for name, value in sorted(asked.items())
            if abs(_number(value, name, -2, 2)) >= 0.005
        )
        await run_in_threadpool(studio.choose_character, seed, truncation, edit)
        return JSONResponse({"seed": seed, "edit": edit})

    @_handled
    async def options(request: Request) -> Response:
        if request.method == "PUT":
            given = (await _json(request)).get("options")
            await run_in_threadpool(studio.set_options, given)
        return JSONResponse({"options": studio.option_list()})

    @_handled
    async def score_svg(request: Request) -> Response:
        svg = await run_in_threadpool(score_picture, studio.file("score"))
        # A picture: no scripts, nothing from anywhere; only its own font and style inside.
        policy = "default-src 'none'; font-src data:; style-src 'unsafe-inline'"
        headers = {"content-security-policy": policy}
        return Response(svg, media_type="image/svg+xml", headers=headers)

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/state", state),
        Route("/api/files/{name:path}", files, methods=["GET", "HEAD"]),
        Route("/api/lyrics", lyrics, methods=["GET", "PUT"]),
        Route("/api/readings", reading, methods=["POST"]),
        Route("/api/compose", compose, methods=["POST"]),
        Route("/api/render", render, methods=["POST"]),
        Route("/api/job", job),
        Route("/api/hints", hints, methods=["PUT", "DELETE"]),
        Route("/api/characters/{seed}.png", character_preview),
        Route("/api/character", character, methods=["POST"]),
        Route("/api/score.svg", score_svg),
        Route("/api/options", options, methods=["GET", "PUT"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        await run_in_threadpool(studio.close)  # a render running stops at its next report

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.studio = studio
    return Guard(app, token=token, port=port)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{text!r} is not a whole number") from None


def _read_back(path: Path, size: tuple[int, int]) -> None:
    """Read the saved hints exactly as the colorize stage will (its own reader)."""
    from acgmake.image.hints import read_hints

    read_hints(path, size)


def score_picture(score: Path) -> bytes:
    """The score as SVG (notes with their lyrics), engraved by Verovio: every page, one
    under the other. UserError when there is no score yet or Verovio is not installed."""
    if not score.is_file():
        raise UserError("there is no score yet; compose first")
    try:
        import verovio
    except ImportError:
        raise UserError("the score view needs Verovio: pip install verovio (LGPL-3.0)") from None
    toolkit = verovio.toolkit()
    toolkit.setOptions({"pageWidth": 2100, "scale": 40, "adjustPageHeight": True, "footer": "none"})
    if not toolkit.loadData(score.read_text(encoding="utf-8")):
        raise UserError("Verovio could not read score.musicxml")
    pages = [toolkit.renderToSVG(page) for page in range(1, toolkit.getPageCount() + 1)]
    if len(pages) == 1:
        return with_lyrics_font(pages[0]).encode("utf-8")
    # One SVG holding each page's SVG below the one before.
    heights, inner = [], []
    for page in pages:
        head = page[: page.index(">", page.index("<svg")) + 1]
        height = float(_attribute(head, "height").rstrip("px"))
        inner.append((sum(heights), page[page.index("<svg") :]))
        heights.append(height)
    width = _attribute(pages[0][: pages[0].index(">", pages[0].index("<svg")) + 1], "width")
    body = "".join(f'<g transform="translate(0,{top})">{svg}</g>' for top, svg in inner)
    return with_lyrics_font(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{sum(heights)}px">'
        f"{body}</svg>"
    ).encode()


def with_lyrics_font(svg: str) -> str:
    """``svg`` (Verovio's) with its lyrics in the clip's own font, carried inside it: the
    font (IPAexGothic) cut down to the characters the lyrics use, as a data URL. The score is
    shown as a picture, which may load nothing from outside itself, so without this its kana
    show only on a machine that has a Japanese font (and as empty boxes elsewhere)."""
    import base64
    import html
    import re

    try:
        from fontTools import subset
        from fontTools.ttLib import TTFont
    except ImportError:  # the studio extra brings it; without, a system font shows the kana
        return svg

    from acgmake.video.text import font_path

    lyrics = "".join(html.unescape(text) for text in re.findall(r">([^<>]+)<", svg))
    characters = {ord(c) for c in lyrics if not c.isspace()}
    if not characters:
        return svg
    font = TTFont(font_path(), lazy=True)
    options = subset.Options()
    options.name_IDs, options.notdef_outline = ["*"], True  # keep the licence's names
    cutter = subset.Subsetter(options)
    cutter.populate(unicodes=characters)
    cutter.subset(font)
    buffer = io.BytesIO()
    font.save(buffer)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    style = (
        "<style>@font-face{font-family:'acgmake lyrics';"
        f"src:url(data:font/ttf;base64,{data}) format('truetype')}}"
        # the title and labels in their own font, kana and kanji from this one
        "text:not([font-family='Leipzig']){font-family:Times,serif,'acgmake lyrics'}"
        "g.syl text,g.syl tspan{font-family:'acgmake lyrics',sans-serif}</style>"
    )
    start = svg.index(">", svg.index("<svg")) + 1
    return svg[:start] + style + svg[start:]


def _attribute(tag: str, name: str) -> str:
    start = tag.index(f'{name}="') + len(name) + 2
    return tag[start : tag.index('"', start)]


__all__ = ["TOKEN_HEADER", "create_app", "check_hints_png", "score_picture"]
