"""Lip sync, lyric text, frame drawing, ffmpeg encoding and the animate stage."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from acgmake.errors import UserError
from acgmake.image.colorize import colorize, parse_palette
from acgmake.image.face import Face
from acgmake.video.encode import VideoEncoder, encode_video, read_media_info
from acgmake.video.frames import FrameRenderer
from acgmake.video.lipsync import mouth_openness, openness_at
from acgmake.video.text import LyricRenderer, font_path, render_text
from acgmake.voice.labels import Phoneme, Timing, read_lab
from handmade_inputs import draw_character, load_stages, write_character, write_song

FPS = 24


# ---------------------------------------------------------------------------------------------
# Lip sync


def test_mouth_opens_on_vowels_and_closes_in_silence(tmp_path):
    phonemes = read_lab(write_song(tmp_path)["phonemes"])
    frame_count = int(2.0 * FPS)
    openness = mouth_openness(phonemes, FPS, frame_count)
    assert openness.shape == (frame_count,) and openness.dtype == np.float32
    times = np.arange(frame_count) / FPS
    for phoneme in phonemes:
        # The middle of each phoneme, away from the eased ramps at its ends.
        middle = (times > phoneme.start_s + 0.05) & (times < phoneme.end_s - 0.05)
        if not middle.any():
            continue
        if phoneme.name == "sil":
            assert np.all(openness[middle] == 0), f"mouth open in silence at {phoneme}"
        elif phoneme.name == "a":
            assert np.all(openness[middle] > 0.9)
        elif phoneme.name in "iu":
            assert np.all((openness[middle] > 0.3) & (openness[middle] < 0.6))


def test_mouth_opening_is_never_late():
    """Each mouth opening starts within one frame of its vowel's onset."""
    phonemes = []
    onsets = []
    t = 0.5
    for vowel in "aoeiu":
        phonemes += [Phoneme(t - 0.5, t - 0.04, "pau"), Phoneme(t - 0.04, t, "m")]
        phonemes.append(Phoneme(t, t + 0.37, vowel))
        onsets.append(t)
        t += 0.87  # not a multiple of the frame time, so onsets fall between frames
    openness = mouth_openness(phonemes, FPS, int(t * FPS))
    opened = (openness[1:] >= 0.1) & (openness[:-1] < 0.1)
    opening_times = (np.flatnonzero(opened) + 1) / FPS
    assert len(opening_times) == len(onsets)
    for opening, onset in zip(opening_times, onsets, strict=True):
        assert abs(opening - onset) <= 1 / FPS, f"mouth opens at {opening:.3f}, vowel {onset:.3f}"


def test_mouth_closes_for_m_b_p_between_vowels():
    phonemes = [Phoneme(0.0, 0.3, "a"), Phoneme(0.3, 0.4, "m"), Phoneme(0.4, 0.7, "a")]
    assert openness_at(phonemes, np.array([0.35]))[0] < 0.1
    assert openness_at(phonemes, np.array([0.15, 0.55])).min() > 0.9


def test_mouth_eases_between_shapes():
    phonemes = [Phoneme(0.0, 0.5, "sil"), Phoneme(0.5, 1.0, "a")]
    fine = openness_at(phonemes, np.linspace(0.4, 0.6, 201))
    assert np.all(np.diff(fine) >= 0)
    assert np.abs(np.diff(fine)).max() < 0.05  # no jump: at least ~20 steps of 1 ms


# ---------------------------------------------------------------------------------------------
# Text


def test_japanese_text_renders_with_the_bundled_font():
    assert font_path().name == "ipaexg.ttf"
    ki, ra = render_text("き", size_px=40), render_text("ら", size_px=40)
    assert ki.dtype == np.uint8 and ki.shape[2] == 4
    assert ki[..., 3].max() == 255
    # Real glyphs, not the same missing-glyph box twice.
    assert ki.shape == ra.shape and not np.array_equal(ki[..., 3], ra[..., 3])
    # White fill, dark outline.
    solid = ki[ki[..., 3] == 255, :3].astype(int).sum(axis=1)
    assert solid.max() > 700 and solid.min() < 200


def test_lyric_lines_are_cached_and_find_their_morae():
    lyrics = LyricRenderer(640, 40)
    line = lyrics.line("きら きら", ("き", "ら", "き", "ら"))
    assert lyrics.line("きら きら", ("き", "ら", "き", "ら")) is line
    edges = line.mora_edges_px
    assert len(edges) == 5 and all(a < b for a, b in zip(edges, edges[1:], strict=False))
    assert edges[-1] <= line.plain.width
    assert line.sung_until_px(0) == edges[0] and line.sung_until_px(4) == edges[-1]
    assert edges[1] < line.sung_until_px(1.5) < edges[2]
    # Kanji sung as kana: the highlight moves evenly.
    kanji = lyrics.line("星", ("ほ", "し"))
    assert kanji.sung_until_px(1) == pytest.approx(np.mean(kanji.mora_edges_px[::2]))


def test_a_long_line_shrinks_to_fit():
    lyrics = LyricRenderer(320, 40)
    assert lyrics.line("あ" * 30).plain.width <= 320


# ---------------------------------------------------------------------------------------------
# Frames


@pytest.fixture(scope="module")
def renderer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("song")
    paths = write_song(folder)
    rgb, face_dict = draw_character(128)
    face = Face.from_dict(face_dict)
    colored = colorize(rgb, face, parse_palette("sky"))
    timing = Timing.read(paths["timing"])
    openness = mouth_openness(read_lab(paths["phonemes"]), FPS, 48)
    return FrameRenderer(colored, face, timing, openness, width=320, height=180, fps=FPS)


def test_frames_show_the_character_with_its_mouth_moving(renderer):
    assert renderer.frame_count == 48
    openness = renderer.openness
    closed, wide = int(np.argmin(openness[:10])), int(np.argmax(openness))
    closed_frame = renderer.render(closed).copy()
    wide_frame = renderer.render(wide).copy()
    assert closed_frame.dtype == np.uint8 and closed_frame.shape == (180, 320, 3)
    # The character's skin is at the middle of the frame, not the sky.
    assert not np.array_equal(closed_frame[70, 160], renderer.background[70, 160])
    # The mouth (below the middle of the face) differs between closed and wide open.
    mouth = (slice(100, 135), slice(140, 180))
    difference = np.abs(closed_frame[mouth].astype(int) - wide_frame[mouth].astype(int))
    assert difference.max() > 80

    # The dark red inside of an open mouth.
    def inside(frame):
        pixels = frame[mouth].astype(int)
        return ((pixels[..., 0] - pixels[..., 1] > 50) & (pixels[..., 0] < 180)).sum()

    assert inside(wide_frame) > 20 > inside(closed_frame)


def test_frames_show_the_lyric_line_and_highlight_it(renderer):
    early, late = renderer.render(10).copy(), renderer.render(40).copy()
    bottom = slice(140, 180)

    # Highlight colour (warm yellow: red and green high, blue low) grows along the line.
    def yellow(frame):
        pixels = frame[bottom].astype(int)
        return ((pixels[..., 0] > 200) & (pixels[..., 1] > 170) & (pixels[..., 2] < 140)).sum()

    assert yellow(late) > yellow(early) > 0


def test_the_character_moves_with_the_beat(renderer):
    beat_s = 60.0 / renderer.timing.tempo_bpm
    on_beat = renderer.motion(renderer.timing.first_beat_s + beat_s)
    between = renderer.motion(renderer.timing.first_beat_s + 1.5 * beat_s)
    assert between[1] < on_beat[1] - 1  # higher between beats (y grows downwards)
    assert on_beat[3] < 1.0 < on_beat[2]  # squashed as it lands
    assert renderer.motion(0.0) == (0.0, 0.0, 1.0, 1.0)  # still before the first beat


# ---------------------------------------------------------------------------------------------
# Encoding


def moving_frames(count, width=160, height=90):
    for index in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, : (index * 7) % width] = (200, 80, 40)
        yield frame


def test_encoder_writes_h264_yuv420p_and_aac(tmp_path):
    audio = write_song(tmp_path, duration_s=1.0)["vocals"]
    path = tmp_path / "clip.mp4"
    written = encode_video(
        path, moving_frames(FPS), width=160, height=90, fps=FPS, audio_path=audio
    )
    assert written == FPS
    info = read_media_info(path)
    assert (info.video_codec, info.pixel_format, info.width, info.height) == (
        "h264", "yuv420p", 160, 90,
    )  # fmt: skip
    assert info.fps == FPS
    assert info.audio_codec == "aac" and info.sample_rate == 48000
    assert info.duration_s == pytest.approx(1.0, abs=0.05)
    assert path.read_bytes()[4:8] == b"ftyp"


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_mid_stream_stops_ffmpeg_and_leaves_no_file(tmp_path, error):
    path = tmp_path / "clip.mp4"
    with pytest.raises(error):
        with VideoEncoder(path, 160, 90, FPS) as encoder:
            for number, frame in enumerate(moving_frames(100)):
                encoder.write(frame)
                if number == 10:
                    assert path.exists()  # ffmpeg has started writing
                    raise error("stop")
    process = encoder._process
    assert process.returncode is not None  # waited for: no zombie left behind
    assert not os.path.exists(f"/proc/{process.pid}") or _is_not_ffmpeg(process.pid)
    assert not path.exists()


def _is_not_ffmpeg(pid: int) -> bool:
    """The pid was reused by another process (not ours, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return " Z " not in handle.read() and pid != os.getpid()
    except FileNotFoundError:
        return True


def test_an_ffmpeg_failure_is_a_user_error_with_its_message(tmp_path):
    not_audio = tmp_path / "vocals.wav"
    not_audio.write_text("this is not a WAV file\n")
    path = tmp_path / "clip.mp4"
    with pytest.raises(UserError, match="ffmpeg could not write clip.mp4: .*(nvalid|rror)"):
        encode_video(path, moving_frames(50), width=160, height=90, fps=FPS,
                     audio_path=not_audio)  # fmt: skip
    assert not path.exists()


def test_encoder_refuses_odd_sizes_and_wrong_frames(tmp_path):
    with pytest.raises(ValueError, match="even"):
        VideoEncoder(tmp_path / "odd.mp4", 161, 90, FPS)
    with pytest.raises(ValueError, match="uint8"):
        with VideoEncoder(tmp_path / "clip.mp4", 160, 90, FPS) as encoder:
            encoder.write(np.zeros((90, 160, 3), np.float32))
    assert not (tmp_path / "clip.mp4").exists()


# ---------------------------------------------------------------------------------------------
# The animate stage


def _registry():
    return load_stages("acgmake.stages.colorize", "acgmake.stages.animate")


def test_animate_stage_makes_a_clip_from_a_character_and_a_song(tmp_path):
    from acgmake.pipeline import Reporter, run

    inputs = {**write_character(tmp_path / "in"), **write_song(tmp_path / "in", duration_s=2.0)}
    progress = []

    class Recorder(Reporter):
        def stage_progress(self, stage, done, total, note):
            progress.append((stage.name, done, total))

    result = run(
        _registry(),
        tmp_path / "run",
        ["clip"],
        inputs=inputs,
        params={"animate": {"size": "320x180", "fps": 12}},
        seed=2,
        reporter=Recorder(),
    )
    info = read_media_info(result.files["clip"])
    assert (info.video_codec, info.pixel_format, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert (info.width, info.height, info.fps) == (320, 180, 12)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert progress[-1] == ("animate", 24, 24)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert any("IPAexGothic" in credit for credit in manifest["credits"])
    with Image.open(result.files["colored"]) as colored:
        assert colored.mode == "RGBA"


@pytest.mark.parametrize("size", ["1280", "1281x720", "axb", "32x32", "1280x720x2"])
def test_animate_refuses_a_bad_size(tmp_path, size):
    from acgmake.pipeline import run

    inputs = {**write_character(tmp_path / "in"), **write_song(tmp_path / "in", duration_s=0.5)}
    with pytest.raises(UserError, match="--size"):
        run(_registry(), tmp_path / "run", ["clip"], inputs=inputs,
            params={"animate": {"size": size}})  # fmt: skip
    assert not (tmp_path / "run" / "clip.mp4").exists()
