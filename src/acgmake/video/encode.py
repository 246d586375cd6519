"""Encoding: frames piped straight into ffmpeg, muxed with the song into an MP4.

Frames go to the ffmpeg binary that ``imageio-ffmpeg`` ships as raw RGB on its standard
input, one at a time, so a clip of any length needs the memory of one frame; the WAV is
ffmpeg's second input. The result is H.264 (yuv420p, what every player takes) with AAC sound
and the index at the front (``+faststart``) so it plays while it downloads.

:func:`encode_frames` draws the frames in a second thread into a few reused buffers while
the first pipes them to ffmpeg, so drawing (numpy and OpenCV, which release the GIL) and
encoding (ffmpeg's own threads) share the cores and memory stays bounded.

If anything goes wrong (an exception while drawing, Ctrl-C, ffmpeg refusing the input),
ffmpeg is killed and waited for (no zombie) and the half-written file is deleted.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import tempfile
import threading
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
    ffmpeg is killed and ``path`` removed. ``audio_until_s`` pads the sound with silence to
    that length (for a video longer than its song).
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        *,
        audio_path: Path | None = None,
        audio_until_s: float | None = None,
        # Measured on 10 s of the example clip at 720p (the character bobbing, the chorus
        # zoom; 2 shared cores), sky / photo background: superfast crf 20 1.21 / 1.96 MB in
        # 3.1 / 3.7 s, PSNR 42.2 / 39.0 dB; veryfast crf 20 0.45 / 0.65 MB, 3.3 / 4.7 s,
        # 41.0 / 37.9 dB; veryfast crf 18 0.58 / 0.85 MB, 2.8 / 4.9 s, 41.5 / 38.4 dB. None
        # smears the moving character (frames looked at side by side). Again on a quiet
        # machine, 21.5 s of the default clip (issue 16): veryfast crf 18 2.81 s, 1.56 MB,
        # 43.5 dB; superfast crf 22 2.32 s, 2.16 MB, 43.4 dB (no difference seen at 2x zoom);
        # ultrafast crf 20 1.58 s, 6.1 MB. The encode is half of a long song's time, so
        # superfast crf 22: the same quality, 17% faster, files 40% larger (still ~0.8 Mbit/s
        # at 720p, a tenth of what video sites take in).
        crf: int = 22,
        preset: str = "superfast",
        audio_bitrate: str = "160k",
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"H.264 in yuv420p needs even dimensions, got {width}x{height}")
        self.path = Path(path)
        import cv2

        self.width, self.height = width, height
        self.frames_written = 0
        self._to_yuv, self._yuv_code = cv2.cvtColor, cv2.COLOR_RGB2YUV_I420
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y",
            # Frames arrive as YUV 4:2:0 (BT.601, limited range: what ffmpeg would make of
            # RGB itself): converted by OpenCV in the thread that sends them, ffmpeg's own
            # conversion was a third of its time.
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}",
            "-framerate", str(fps), "-i", "pipe:0",
        ]  # fmt: skip
        if audio_path is not None:
            command += ["-i", str(audio_path), "-map", "0:v:0", "-map", "1:a:0"]
            if audio_until_s is not None:
                # Silence after the song, as long as the video goes on (the credits).
                command += ["-af", f"apad=whole_dur={audio_until_s:.3f}"]
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
        planes = self._to_yuv(np.ascontiguousarray(frame), self._yuv_code)
        try:
            self._process.stdin.write(memoryview(planes).cast("B"))
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


def encode_frames(
    path: Path,
    draw: Callable[[int, np.ndarray], np.ndarray],
    frame_count: int,
    *,
    width: int,
    height: int,
    fps: float,
    audio_path: Path | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    in_thread: bool = True,
    buffers: int = 4,
    **options: object,
) -> int:
    """Encode frames ``0 .. frame_count - 1``, each drawn by ``draw(index, buffer)`` into an
    RGB uint8 (height, width, 3) ``buffer`` (and returned), with ``audio_path``, into ``path``.

    With ``in_thread`` the frames are drawn in a second thread, at most ``buffers`` frames
    ahead of ffmpeg. ``progress(done, frame_count)`` is called after each frame. Returns the
    number of frames written; on any error (Ctrl-C too) no file is left at ``path``.
    """
    if not in_thread:
        frame = np.empty((height, width, 3), np.uint8)
        frames = (draw(index, frame) for index in range(frame_count))
        return encode_video(
            path, frames, width=width, height=height, fps=fps, audio_path=audio_path,
            frame_count=frame_count, progress=progress, **options,
        )  # fmt: skip

    free: queue.Queue[np.ndarray] = queue.Queue()
    drawn: queue.Queue[np.ndarray | BaseException | None] = queue.Queue()
    for _ in range(max(1, buffers)):
        free.put(np.empty((height, width, 3), np.uint8))
    stop = threading.Event()

    def draw_all() -> None:
        try:
            for index in range(frame_count):
                while True:
                    if stop.is_set():
                        return
                    try:
                        buffer = free.get(timeout=0.1)
                        break
                    except queue.Empty:
                        continue
                drawn.put(draw(index, buffer))
            drawn.put(None)
        except BaseException as error:  # handed to the encoding thread, which raises it
            drawn.put(error)

    drawer = threading.Thread(target=draw_all, name="acgmake-draw", daemon=True)
    drawer.start()
    try:
        with VideoEncoder(path, width, height, fps, audio_path=audio_path, **options) as encoder:
            for _ in range(frame_count):
                frame = drawn.get()
                if isinstance(frame, BaseException):
                    raise frame
                if frame is None:
                    break
                encoder.write(frame)
                free.put(frame)
                if progress is not None:
                    progress(encoder.frames_written, frame_count)
            return encoder.frames_written
    finally:
        stop.set()
        drawer.join()


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
    video = re.search(r"Stream #.*?Video: (.*)", text)
    if video:
        # "h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 320x180 [SAR
        # 1:1 DAR 16:9], 150 kb/s, 24 fps, ...": fields split on commas outside brackets.
        fields = _top_level_fields(video.group(1))
        size = next((re.match(r"(\d+)x(\d+)", f) for f in fields if re.match(r"\d+x\d+", f)), None)
        fps = re.search(r"([\d.]+) fps", video.group(1))
        info.update(
            video_codec=fields[0].split()[0] if fields and fields[0] else "",
            pixel_format=re.split(r"[(\s]", fields[1])[0] if len(fields) > 1 else "",
            width=int(size.group(1)) if size else 0,
            height=int(size.group(2)) if size else 0,
            fps=float(fps.group(1)) if fps else 0.0,
        )
    audio = re.search(r"Stream #.*?Audio: (\w+).*?(\d+) Hz", text)
    if audio:
        info.update(audio_codec=audio.group(1), sample_rate=int(audio.group(2)))
    return MediaInfo(**info)


def _top_level_fields(text: str) -> list[str]:
    """``text`` split on the commas that are not inside brackets, each field stripped."""
    fields, depth, current = [], 0, []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    fields.append("".join(current).strip())
    return fields


def write_previews(
    clip: Path,
    gif_path: Path,
    webm_path: Path,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    width: int = 480,
    gif_fps: float = 12.0,
) -> None:
    """Cut a small preview from the MP4 ``clip`` in one pass: an animated GIF (no sound,
    ``gif_fps``, its own 128-colour palette) and a WebM (VP9 + Opus) with the sound, both
    ``width`` pixels wide, from ``start_s`` for ``duration_s`` (None: to the end).

    Raises UserError with ffmpeg's message if it fails.
    """
    cut = ["-ss", f"{max(start_s, 0.0):.3f}"]
    if duration_s is not None:
        cut += ["-t", f"{duration_s:.3f}"]
    graph = (
        f"[0:v]scale={width}:-2:flags=lanczos,split[gif][webm];"
        f"[gif]fps={gif_fps:g},split[g1][g2];"
        "[g1]palettegen=max_colors=128:stats_mode=diff[palette];"
        "[g2][palette]paletteuse=dither=bayer:bayer_scale=3[gifout]"
    )
    command = [
        ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y",
        *cut, "-i", str(clip), "-filter_complex", graph,
        "-map", "[gifout]", "-loop", "0", "-f", "gif", str(gif_path),
        "-map", "[webm]", "-map", "0:a?", "-c:v", "libvpx-vp9", "-deadline", "realtime",
        "-cpu-used", "8", "-row-mt", "1", "-b:v", "0", "-crf", "38", "-pix_fmt", "yuv420p",
        "-c:a", "libopus", "-b:a", "96k", "-f", "webm", str(webm_path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        last = lines[-1] if lines else f"exit status {result.returncode}"
        raise UserError(f"ffmpeg could not make the preview of {Path(clip).name}: {last}")
