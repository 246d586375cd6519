"""Sinsy's online service as an optional singing backend (never the default, never automatic).

The request is the one the ``sinsy-cli`` package (0.5.0, 2016) sends: an HTTP POST of the
MusicXML file to ``index.php`` as the form field ``SYNSRC`` with the fields ``SPKR_LANG``,
``SPKR`` (the voice's number for that language), ``SYNALPHA`` (timbre), ``VIBPOWER``
(vibrato, 0-2) and ``F0SHIFT`` (semitones); the answer is an HTML page that links the
synthesized WAV. acgmake speaks that protocol with the standard library alone. It has not been
checked against the live service from here (the project's machines have no network but
package registries), so a changed service shows as a clear error, not as silence.

Point it elsewhere (a mirror, a local test server) with the environment variable
``ACGMAKE_SINSY_URL``.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin
from urllib.request import Request, urlopen

import numpy as np

from acgmake.errors import UserError

DEFAULT_URL = "http://sinsy.sp.nitech.ac.jp/"
URL_VARIABLE = "ACGMAKE_SINSY_URL"
ONLINE_CREDIT = (
    "Singing synthesis: the Sinsy online service (http://sinsy.jp/), Nagoya Institute of Technology"
)
#: Larger than any song's WAV the service would send (10 minutes at 48 kHz, 16-bit, mono).
MAX_WAV_BYTES = 64 * 1024 * 1024
_USER_AGENT = "acgmake (+sinsy backend)"


def service_url() -> str:
    """The service's base URL: ``ACGMAKE_SINSY_URL`` if set, else Sinsy's own site."""
    url = os.environ.get(URL_VARIABLE, "").strip() or DEFAULT_URL
    return url if url.endswith("/") else url + "/"


def sing_online(
    xml: bytes,
    *,
    voice_index: int = 0,
    alpha: float = 0.55,
    vibrato: float = 1.0,
    timeout_s: float = 120.0,
) -> tuple[np.ndarray, int]:
    """(samples, sample_rate): the MusicXML ``xml`` sung by the online service's Japanese voice
    number ``voice_index``; float32 mono in [-1, 1].

    Raises :class:`UserError` when the service cannot be reached (offline), answers with an
    error, or answers without a WAV file.
    """
    import soundfile

    base = service_url()
    fields = {
        "LANG": "en",
        "SPKR_LANG": "japanese",
        "SPKR": str(int(voice_index)),
        "SYNALPHA": f"{alpha:.2f}",
        "VIBPOWER": f"{vibrato:.2f}",
        "F0SHIFT": "0",  # acgmake transposes the score itself, as for the local backend
    }
    body, content_type = _form(fields, "SYNSRC", "score.musicxml", xml)
    page = _fetch(
        Request(
            base + "index.php",
            data=body,
            headers={"Content-Type": content_type, "User-Agent": _USER_AGENT},
        ),
        base,
        timeout_s,
    ).decode("utf-8", "replace")
    links = re.findall(r"""href\s*=\s*["']([^"']+\.wav)["']""", page, flags=re.IGNORECASE)
    if not links:
        raise UserError(
            f"the Sinsy service at {base} answered without a WAV file (it may have refused the "
            "score or changed its page); sing locally with --sinsy-backend local"
        )
    wav = _fetch(
        Request(urljoin(base, links[0]), headers={"User-Agent": _USER_AGENT}), base, timeout_s
    )
    try:
        samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise UserError(
            f"the Sinsy service at {base} sent a WAV acgmake cannot read ({error})"
        ) from None
    return samples.mean(axis=1), int(rate)


def _fetch(request: Request, base: str, timeout_s: float) -> bytes:
    try:
        with urlopen(request, timeout=timeout_s) as answer:
            data = answer.read(MAX_WAV_BYTES + 1)
    except HTTPError as error:
        raise UserError(
            f"the Sinsy service at {base} answered HTTP {error.code} ({error.reason}); "
            "try later, or sing locally with --sinsy-backend local"
        ) from None
    except (URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UserError(
            f"cannot reach the Sinsy service at {base} ({reason}); you may be offline — "
            "sing locally with --sinsy-backend local (the default)"
        ) from None
    if len(data) > MAX_WAV_BYTES:
        raise UserError(f"the Sinsy service at {base} sent more than {MAX_WAV_BYTES >> 20} MB")
    return data


def _form(
    fields: dict[str, str], file_field: str, filename: str, content: bytes
) -> tuple[bytes, str]:
    """A multipart/form-data body with ``fields`` and one file, and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
