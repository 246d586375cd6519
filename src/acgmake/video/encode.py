"""Encoding: frames piped straight into ffmpeg, muxed with the song into an MP4.

Frames go to the ffmpeg binary that ``imageio-ffmpeg`` ships as raw RGB on its standard
input, one at a time, so a clip of any length needs the memory of one frame; the WAV is
ffmpeg's second input. The result is H.264 (yuv420p, what every player takes) with AAC sound
and the index at the front (``+faststart``) so it plays while it downloads.

If anything goes wrong (an exception while drawing, Ctrl-C, ffmpeg refusing the input),
ffmpeg is killed and waited for (no zombie) and the half-written file is deleted.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from acgmake.errors import UserError


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class VideoEncoder:
    """Write frames to an H.264 + AAC MP4 as they are drawn. Use as a context manager::

        with VideoEncoder(path, 1280, 720, 24, audio_path=wav) as encoder:
            for frame in frames:
                encoder.write(frame)

    The file is complete when the ``with`` block ends normally; if it ends with an exception
    ffmpeg is killed and ``path`` removed.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        *,
        audio_path: Path | None = None,
        crf: int = 20,
        preset: str = "veryfast",
        audio_bitrate: str = "160k",
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"H.264 in yuv420p needs even dimensions, got {width}x{height}")
        self.path = Path(path)
        self.width, self.height = width, height
        self.frames_written = 0
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-framerate", str(fps), "-i", "pipe:0",
        ]  # fmt: skip
        if audio_path is not None:
            command += ["-i", str(audio_path), "-map", "0:v:0", "-map", "1:a:0"]
            command += ["-c:a", "aac", "-b:a", audio_bitrate]
        command += [
            "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", "-f", "mp4", str(self.path),
        ]  # fmt: skip
        # ffmpeg's messages go to a file, not a pipe: an unread pipe could fill and stall it.
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            # Its own process group: Ctrl-C reaches Python, which then stops ffmpeg itself,
            # rather than ffmpeg finishing a half clip on its own.
            start_new_session=True,
        )

    def write(self, frame: np.ndarray) -> None:
        """Send one RGB uint8 frame of shape (height, width, 3)."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 ({self.height}, {self.width}, 3), "
                f"got {frame.dtype} {frame.shape}"
            )
        try:
            self._process.stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except (BrokenPipeError, OSError):
            # ffmpeg stopped reading: it failed; its own message says why.
            self._process.wait()
            raise self._failure() from None
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file; raise UserError with ffmpeg's last message if it failed."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self._process.stdin.close()
        returncode = self._process.wait()
        if returncode != 0:
            raise self._failure()
        self._log.close()

    def abort(self) -> None:
        """Kill ffmpeg, wait for it, and delete the partial file."""
        if self._process.poll() is None:
            self._process.kill()
        with contextlib.suppress(BrokenPipeError, OSError):
            self._process.stdin.close()
        self._process.wait()
        self._log.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _failure(self) -> UserError:
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        last = lines[-1] if lines else f"exit status {self._process.returncode}"
        return UserError(f"ffmpeg could not write {self.path.name}: {last}")

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            try:
                self.close()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


def encode_video(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    width: int,
    height: int,
    fps: float,
    audio_path: Path | None = None,
    frame_count: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    **options: object,
) -> int:
    """Encode ``frames`` (RGB uint8, one at a time) and ``audio_path`` into the MP4 ``path``.

    ``progress(done, frame_count)`` is called after each frame. Returns the number of frames
    written. On any error no file is left at ``path``.
    """
    with VideoEncoder(path, width, height, fps, audio_path=audio_path, **options) as encoder:
        for frame in frames:
            encoder.write(frame)
            if progress is not None:
                progress(encoder.frames_written, frame_count)
        return encoder.frames_written


@dataclass(frozen=True)
class MediaInfo:
    """What ``ffmpeg -i`` says about a media file (there is no ffprobe in imageio-ffmpeg)."""

    duration_s: float
    video_codec: str = ""
    pixel_format: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    audio_codec: str = ""
    sample_rate: int = 0


def read_media_info(path: Path) -> MediaInfo:
    """Duration and the first video and audio stream of ``path``, read from ffmpeg's banner.

    Raises UserError if ffmpeg cannot read the file.
    """
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    text = result.stderr
    duration = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if duration is None:
        last = text.strip().splitlines()[-1] if text.strip() else "no output"
        raise UserError(f"ffmpeg cannot read {path}: {last}")
    hours, minutes, seconds = duration.groups()
    info = {"duration_s": int(hours) * 3600 + int(minutes) * 60 + float(seconds)}
    video = re.search(r"Stream #.*?Video: (\w+)[^,]*, (\w+)[^,]*, (\d+)x(\d+)(.*)", text)
    if video:
        fps = re.search(r"([\d.]+) fps", video.group(5))
        info.update(
            video_codec=video.group(1),
            pixel_format=video.group(2),
            width=int(video.group(3)),
            height=int(video.group(4)),
            fps=float(fps.group(1)) if fps else 0.0,
        )
    audio = re.search(r"Stream #.*?Audio: (\w+).*?(\d+) Hz", text)
    if audio:
        info.update(audio_codec=audio.group(1), sample_rate=int(audio.group(2)))
    return MediaInfo(**info)
