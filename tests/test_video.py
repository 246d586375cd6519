"""Lip sync, lyric text, expressions, frame drawing, ffmpeg encoding, animate and preview."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from acgmake.errors import UserError
from acgmake.image.face import EXPRESSIONS, Face
from acgmake.video.clip import drawn_box
from acgmake.video.encode import VideoEncoder, encode_frames, encode_video, read_media_info
from acgmake.video.expressions import (
    CharacterSprite,
    drawn_blink,
    drawn_expressions,
    scale_rgba,
    split_strip,
)
from acgmake.video.frames import FrameRenderer, Look, blink_amounts, layout_for, plan_motion
from acgmake.video.lipsync import (
    MOUTH_SHAPES,
    SHAPE_OPENNESS,
    drawn_mouths,
    drawn_shape,
    lipsync_offsets,
    mouth_at,
    mouth_openness,
    mouth_shapes,
    openness_at,
)
from acgmake.video.text import LyricRenderer, font_path, render_text
from acgmake.voice.labels import Phoneme, Timing, read_lab
from handmade_inputs import (
    draw_colored,
    load_stages,
    write_colored,
    write_expressions,
    write_song,
)

FPS = 24


# ---------------------------------------------------------------------------------------------
# Lip sync


def test_mouth_opens_on_vowels_and_closes_in_silence(tmp_path):
    phonemes = read_lab(write_song(tmp_path)["phonemes"])
    frame_count = int(2.0 * FPS)
    openness = mouth_openness(phonemes, FPS, frame_count)
    assert openness.shape == (frame_count,) and openness.dtype == np.float32
    times = (np.arange(frame_count) + 0.5) / FPS  # a frame shows the middle of its time
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


def test_each_vowel_has_its_own_mouth_shape():
    phonemes, t = [], 0.0
    for vowel in "aiueo":
        phonemes += [Phoneme(t, t + 0.05, "k"), Phoneme(t + 0.05, t + 0.4, vowel)]
        t += 0.4
    middles = np.array([0.25 + 0.4 * i for i in range(5)])
    mouth = mouth_at(phonemes, middles)
    assert mouth.shape == (5, len(MOUTH_SHAPES))
    np.testing.assert_allclose(mouth.sum(axis=1), 1.0, atol=1e-6)
    assert [MOUTH_SHAPES[i] for i in mouth.argmax(axis=1)] == list("aiueo")
    assert mouth.max(axis=1).min() == pytest.approx(1.0)
    # A consonant already shapes the lips for its vowel, barely open.
    k_before_o = mouth_at(phonemes, np.array([1.6 + 0.025]))[0]
    assert k_before_o[MOUTH_SHAPES.index("rest")] > 0.7
    assert k_before_o[MOUTH_SHAPES.index("o")] > 0.1


@pytest.mark.parametrize("fps", [12, 24, 25, 30, 60])
def test_lip_sync_offset_is_within_half_a_frame(fps):
    """Each mouth opening shows within half a frame of its vowel's onset (so within one)."""
    phonemes = []
    t = 0.5
    for vowel in "aoeiuaoeiu":
        closer = "m" if vowel in "aei" else "k"
        phonemes += [Phoneme(t - 0.5, t - 0.04, "pau"), Phoneme(t - 0.04, t, closer)]
        phonemes.append(Phoneme(t, t + 0.37, vowel))
        t += 0.8731  # not a multiple of the frame time, so onsets fall between frames
    openness = mouth_openness(phonemes, fps, int(t * fps))
    offsets = lipsync_offsets(phonemes, openness, fps)
    assert len(offsets) == 10
    assert np.abs(offsets).max() <= 0.5 / fps + 1e-9, offsets * fps


def test_a_late_mouth_is_measured_late():
    """The measure can fail: a mouth drawn two frames late is two frames off."""
    phonemes = [Phoneme(0.0, 0.5, "pau"), Phoneme(0.5, 1.0, "a"), Phoneme(1.0, 1.5, "pau")]
    openness = mouth_openness(phonemes, FPS, 36)
    late = np.concatenate([[0.0, 0.0], openness[:-2]])
    assert np.abs(lipsync_offsets(phonemes, openness, FPS)).max() <= 0.5 / FPS
    assert lipsync_offsets(phonemes, late, FPS)[0] > 1.4 / FPS


def test_mouth_closes_for_m_b_p_between_vowels():
    phonemes = [Phoneme(0.0, 0.3, "a"), Phoneme(0.3, 0.4, "m"), Phoneme(0.4, 0.7, "a")]
    assert openness_at(phonemes, np.array([0.35]))[0] < 0.1
    assert openness_at(phonemes, np.array([0.15, 0.55])).min() > 0.9


def test_mouth_eases_between_shapes():
    phonemes = [Phoneme(0.0, 0.5, "sil"), Phoneme(0.5, 1.0, "a"), Phoneme(1.0, 1.5, "i")]
    fine = openness_at(phonemes, np.linspace(0.4, 0.6, 201))
    assert np.all(np.diff(fine) >= 0)
    assert np.abs(np.diff(fine)).max() < 0.05  # no jump: at least ~20 steps of 1 ms
    shapes = mouth_at(phonemes, np.linspace(0.9, 1.1, 201))
    assert np.abs(np.diff(shapes, axis=0)).max() < 0.05  # a cross-fade from a to i


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
# Expressions and frames


def character_sprite(width, height, strip=None):
    """The handmade colored character as a sprite for a ``width`` x ``height`` frame: with
    drawn mouths and eyelids, or the expressions of ``strip`` (colored_expressions.png)."""
    colored, face_dict = draw_colored(128)
    face = Face.from_dict(face_dict)
    if strip is None:
        images = [colored]
    else:
        with Image.open(strip) as picture:
            images = split_strip(np.asarray(picture.convert("RGBA")))
    layout = layout_for(
        width,
        height,
        images[0].shape[1],
        images[0].shape[0],
        Look(),
        visible=drawn_box(images),
        face=face.face,
    )
    images = [scale_rgba(i, layout.character_w, layout.character_h) for i in images]
    if strip is None:
        images = drawn_expressions(images[0], face)
    return CharacterSprite(images, face)


def renderer_for(folder, width=320, height=180, strip=None, seconds=2.0, **options):
    paths = write_song(folder, duration_s=seconds)
    timing = Timing.read(paths["timing"])
    mouth = mouth_shapes(read_lab(paths["phonemes"]), FPS, round(seconds * FPS))
    sprite = character_sprite(width, height, strip)
    return FrameRenderer(sprite, timing, mouth, width=width, height=height, fps=FPS, **options)


@pytest.fixture(scope="module")
def renderer(tmp_path_factory):
    return renderer_for(tmp_path_factory.mktemp("song"))


def openness(renderer):
    return renderer.mouth @ np.array([0.0, 1.0, 0.4, 0.45, 0.65, 0.8])


def test_frames_show_the_character_with_its_mouth_moving(renderer):
    assert renderer.frame_count == 48
    shown = openness(renderer)
    closed, wide = int(np.argmin(shown[:10])), int(np.argmax(shown))
    closed_frame = renderer.render(closed).copy()
    wide_frame = renderer.render(wide).copy()
    assert closed_frame.dtype == np.uint8 and closed_frame.shape == (180, 320, 3)
    # The character's skin is at the middle of the frame, not the sky.
    assert not np.array_equal(closed_frame[70, 160], renderer.background[70, 160])
    # The mouth (below the middle of the face) differs between closed and wide open.
    mouth = (slice(95, 140), slice(135, 185))
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


def test_the_character_moves_with_the_beat_and_more_in_the_chorus(tmp_path):
    verse = renderer_for(tmp_path)
    timing, layout = verse.timing, verse.layout
    beat_s = 60.0 / timing.tempo_bpm
    second_beat = timing.first_beat_s + 2 * beat_s
    # Just after the second beat, halfway to the next, and before the first.
    times = np.array([second_beat + 0.001, second_beat + beat_s / 2, 0.0])
    motion = plan_motion(timing, times, layout, verse.look)
    landing, between, before = motion.dy
    assert between < landing - 0.5  # higher between beats (y grows downwards)
    # Squashed as it lands (its breathing aside), still before the first beat.
    assert motion.scale_y[0] < motion.scale_y[1] - 0.005 and motion.scale_x[0] > 1.0
    assert before == 0 and motion.zoom[2] == 1.0

    for line in timing.lines:
        line.section = "chorus"
    chorus = plan_motion(timing, verse.times, layout, verse.look)
    assert np.abs(chorus.dy).max() > 1.5 * np.abs(verse.motion.dy).max()
    assert chorus.zoom.max() > verse.motion.zoom.max() + 0.03  # the camera comes closer


def test_blinks_come_at_natural_intervals():
    closed = blink_amounts(FPS, 60 * FPS, seed=3)
    shut = closed > 0.5
    starts = np.flatnonzero(shut[1:] & ~shut[:-1]) / FPS
    gaps = np.diff(starts)
    assert 10 <= len(starts) <= 35  # 12–25 blinks a minute
    assert gaps.min() >= 0.25 and np.median(gaps) > 1.5
    assert shut.mean() < 0.06  # the eyes are open nearly all the time
    assert not np.array_equal(closed, blink_amounts(FPS, 60 * FPS, seed=4))


def face_part(renderer, index, top, bottom):
    """The rows ``top`` .. ``bottom`` (of its height) of the face's box in frame ``index``,
    as slices of the frame."""
    x0, y0, x1, y1 = renderer.face_box(index)
    height = y1 - y0
    return slice(round(y0 + top * height), round(y0 + bottom * height)), slice(round(x0), round(x1))


def _blue_mouth(frame):
    """Pixels of the strip's open mouths (handmade_inputs.EXPRESSION_MOUTH, deep blue)."""
    red, green, blue = (frame[..., i].astype(int) for i in range(3))
    return int(((blue - green > 80) & (red < 100)).sum())


def test_the_mouths_and_blinks_come_from_the_expressions_strip(tmp_path):
    strip = write_expressions(tmp_path)
    with Image.open(strip) as picture:
        assert picture.size == (128 * len(EXPRESSIONS), 128) and picture.mode == "RGBA"
    model = renderer_for(tmp_path, strip=strip)
    drawn = renderer_for(tmp_path)
    wide = int(np.argmax(openness(model)))
    rest = int(np.argmin(openness(model)[:10]))
    # The strip's own open mouth (blue inside), not a drawn one, when a vowel is sung.
    assert _blue_mouth(model.render(wide)) > 15
    assert _blue_mouth(model.render(rest)) == 0
    assert _blue_mouth(drawn.render(wide)) == 0
    # A blink closes the strip's eyes: the blue irises are gone from the eye region.
    eyes = face_part(model, rest, 0.3, 0.65)
    model.blink[:] = 0.0
    open_eyes = model.render(rest)[eyes].copy()
    model.blink[rest] = 1.0
    model.character._shown = None
    shut_eyes = model.render(rest)[eyes].copy()
    iris = np.array([70, 110, 170])

    def iris_pixels(part):
        return int((np.abs(part.astype(int) - iris).max(axis=2) < 40).sum())

    assert iris_pixels(open_eyes) > 30 and iris_pixels(shut_eyes) < iris_pixels(open_eyes) / 10
    # Outside the mouth and eyes every frame is the rest expression: no flicker.
    hair = face_part(model, rest, 0.0, 0.15)
    assert np.array_equal(model.render(rest)[hair], model.render(rest)[hair])


def test_a_drawn_blink_shuts_the_eyes_of_the_strips_rest_expression(tmp_path):
    from acgmake.video.clip import clip_renderer

    strip = write_expressions(tmp_path / "in")
    paths = {**write_song(tmp_path / "song", duration_s=2.0), **write_colored(tmp_path / "c")}
    with Image.open(strip) as picture:
        images = split_strip(np.asarray(picture.convert("RGBA")))
    face = Face.read(paths["face"])
    shut = drawn_blink(images[0], face)
    iris = np.array([70, 110, 170])

    def iris_pixels(image):
        height, width = image.shape[:2]
        x0, y0, x1, y1 = Face.pixel_box(face.eyes[0], width, height)
        part = image[y0:y1, x0:x1, :3].astype(int)
        return int((np.abs(part - iris).max(axis=2) < 40).sum())

    assert iris_pixels(images[0]) > 20 and iris_pixels(shut) < iris_pixels(images[0]) / 10
    assert np.array_equal(shut[-20:], images[0][-20:])  # nothing but the eyes changes

    def blink_patch(blink):
        renderer = clip_renderer(
            colored=paths["colored"],
            face=paths["face"],
            timing=paths["timing"],
            phonemes=paths["phonemes"],
            song_s=2.0,
            width=320,
            height=180,
            fps=FPS,
            expressions=strip,
            blink=blink,
        )
        return renderer.character.eyes.pixels[-1]  # the closed eyes

    assert not np.array_equal(blink_patch("drawn"), blink_patch("model"))


def test_a_frame_shows_one_mouth_drawing_never_two_through_each_other(tmp_path):
    """The lip-sync track mixes shapes (a consonant's hint of the coming vowel over the closed
    mouth, a held ん's third of "u", a ramp's middle); a frame shows the one drawing with the
    most weight, a whispered vowel's even mix its vowel."""
    from acgmake.video.clip import clip_renderer

    strip = write_expressions(tmp_path / "in")
    paths = {**write_song(tmp_path / "song", duration_s=2.0), **write_colored(tmp_path / "c")}
    renderer = clip_renderer(colored=paths["colored"], face=paths["face"],
                             timing=paths["timing"], phonemes=paths["phonemes"], song_s=2.0,
                             width=320, height=180, fps=FPS, expressions=strip)  # fmt: skip
    sprite, patches = renderer.character, renderer.character.mouth
    area = (slice(patches.top, patches.top + patches.pixels.shape[1]),
            slice(patches.left, patches.left + patches.pixels.shape[2]))  # fmt: skip

    def shown(weights) -> np.ndarray:
        sprite._shown = None
        return sprite.compose(np.asarray(weights, np.float32), 0.0).colour[area].copy()

    one = np.eye(6, dtype=np.float32)
    drawings = [shown(one[i]) for i in range(6)]
    assert all(not np.array_equal(drawings[0], d) for d in drawings[1:])
    a, u = MOUTH_SHAPES.index("a"), MOUTH_SHAPES.index("u")
    for weights, expected in (
        (0.85 * one[0] + 0.15 * one[a], 0),  # k before a: closed, no ghost of the a
        (2 / 3 * one[0] + 1 / 3 * one[u], 0),  # ん
        (0.4 * one[0] + 0.6 * one[a], a),  # past the middle of a ramp
        (0.5 * one[0] + 0.5 * one[u], u),  # a whispered u
    ):
        assert np.array_equal(shown(weights), drawings[expected])
        assert np.array_equal(drawn_shape(weights), one[expected])


@pytest.mark.parametrize("fps", [12, 24, 30])
def test_the_drawn_mouth_opens_within_half_a_frame_of_each_vowel(fps):
    phonemes, t = [], 0.5
    for vowel in "aoeiuaoeiu":
        closer = "m" if vowel in "aei" else "k"
        phonemes += [Phoneme(t - 0.5, t - 0.04, "pau"), Phoneme(t - 0.04, t, closer)]
        phonemes.append(Phoneme(t, t + 0.37, vowel))
        t += 0.8731
    drawn = drawn_mouths(phonemes, fps, int(t * fps))
    assert set(np.unique(drawn)) <= {0.0, 1.0} and (drawn.sum(axis=1) == 1).all()
    offsets = lipsync_offsets(phonemes, drawn @ SHAPE_OPENNESS, fps)
    late = lipsync_offsets(phonemes, np.roll(drawn, 2, axis=0) @ SHAPE_OPENNESS, fps)
    assert late.max() > 1.4 / fps  # the measure sees a mouth two frames late
    assert len(offsets) == 10
    assert np.abs(offsets).max() <= 0.5 / fps + 1e-9, offsets * fps


def test_a_blink_snaps_open_half_closed_closed_without_ghost_eyes(tmp_path):
    """Limited animation's blink: each frame shows one drawing (open, the in-between, shut),
    never two faded into each other (open eyes showing through the lids)."""
    from acgmake.video.clip import clip_renderer
    from acgmake.video.expressions import drawn_half_blink

    strip = write_expressions(tmp_path / "in")
    paths = {**write_song(tmp_path / "song", duration_s=2.0), **write_colored(tmp_path / "c")}
    renderer = clip_renderer(colored=paths["colored"], face=paths["face"],
                             timing=paths["timing"], phonemes=paths["phonemes"], song_s=2.0,
                             width=320, height=180, fps=FPS, expressions=strip)  # fmt: skip
    sprite = renderer.character
    eyes = sprite.eyes
    area = (slice(eyes.top, eyes.top + eyes.pixels.shape[1]),
            slice(eyes.left, eyes.left + eyes.pixels.shape[2]))  # fmt: skip
    shown = {}
    for blink in (0.0, 0.1, 0.3, 0.5, 0.7, 0.8, 1.0):
        sprite._shown = None
        shown[blink] = sprite.compose(np.eye(6, dtype=np.float32)[0], blink).colour[area].copy()
    assert np.array_equal(shown[0.0], shown[0.1])
    assert np.array_equal(shown[0.3], shown[0.5]) and np.array_equal(shown[0.5], shown[0.7])
    assert np.array_equal(shown[0.8], shown[1.0])
    assert not np.array_equal(shown[0.0], shown[0.5]) and not np.array_equal(shown[0.5], shown[1.0])
    # The in-between keeps the lower half of the open eye and covers the upper half.
    with Image.open(strip) as picture:
        rest = split_strip(np.asarray(picture.convert("RGBA")))[0]
    face = Face.read(paths["face"])
    half = drawn_half_blink(rest, face)
    iris = np.array([70, 110, 170])
    x0, y0, x1, y1 = Face.pixel_box(face.eyes[0], rest.shape[1], rest.shape[0])
    middle = (y0 + y1) // 2

    def iris_pixels(image, top, bottom):
        part = image[top:bottom, x0:x1, :3].astype(int)
        return int((np.abs(part - iris).max(axis=2) < 40).sum())

    assert iris_pixels(half, y0, middle - 1) < iris_pixels(rest, y0, middle - 1) / 4
    assert iris_pixels(half, middle + 2, y1) > 0.6 * iris_pixels(rest, middle + 2, y1)


def test_a_strip_of_the_wrong_width_is_a_user_error():
    with pytest.raises(UserError, match="7 pictures"):
        split_strip(np.zeros((64, 100, 4), np.uint8))


def test_the_portrait_layout_puts_the_lyrics_below_the_face(tmp_path):
    renderer = renderer_for(tmp_path, width=180, height=320)
    layout = renderer.layout
    assert layout.portrait and layout.next_y > layout.lyric_y
    frame = renderer.render(30).copy()  # a line is being sung
    renderer.timing.lines = []
    without_lyrics = renderer.render(30).copy()
    # The lyrics are below the chin, in every frame, and the face in the top part.
    rows = np.flatnonzero(np.abs(frame.astype(int) - without_lyrics).max(axis=(1, 2)) > 60)
    assert rows.size > layout.text_px // 2
    chin = max(renderer.face_box(index)[3] for index in range(renderer.frame_count))
    assert rows.min() >= layout.lyric_y - 2 and rows.min() > chin
    assert chin < 320 * 0.6 and layout.character_w > 180
    # Square and landscape frames keep the lyrics at the bottom.
    for width, height in ((320, 320), (320, 180)):
        other = layout_for(width, height, 128, 128, Look())
        assert not other.portrait and other.lyric_y > height * 0.75


def composed(folder, width, height, chin=None, **options):
    """A renderer for a 1024-pixel character (as the upscaled, colored one will be) singing
    a verse and two choruses in a ``width`` x ``height`` frame; ``chin`` moves the bottom
    of face.json's face box (a generated character's chin is low in its picture)."""
    paths = write_song(folder, duration_s=6.0, phrases=3)
    timing = Timing.read(paths["timing"])
    for line, section in zip(timing.lines, ("verse", "chorus", "chorus"), strict=True):
        line.section = section
    colored, face_dict = draw_colored(1024)
    if chin is not None:
        face_dict["face"][3] = chin
    face = Face.from_dict(face_dict)
    look = Look()
    layout = layout_for(
        width, height, 1024, 1024, look, visible=drawn_box([colored]), face=face.face
    )
    images = drawn_expressions(scale_rgba(colored, layout.character_w, layout.character_h), face)
    mouth = mouth_shapes(read_lab(paths["phonemes"]), FPS, round(6.0 * FPS))
    return FrameRenderer(
        CharacterSprite(images, face),
        timing,
        mouth,
        width=width,
        height=height,
        fps=FPS,
        look=look,
        **options,
    )


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (1080, 1920), (1080, 1080)])
@pytest.mark.parametrize("chin", [None, 0.81, 0.95])
def test_the_face_is_large_and_clear_of_the_lyrics_in_every_frame(tmp_path, size, chin):
    width, height = size
    renderer = composed(tmp_path, width, height, chin)
    layout, motion = renderer.layout, renderer.motion
    # The chorus comes closer and the character bobs on the beat: the frames checked move.
    assert motion.zoom.max() > 1.05 and motion.dy.min() < -0.01 * height
    crop_w, crop_h = renderer.character.rest.width, renderer.character.rest.height
    shown = []
    for index in range(renderer.frame_count):
        x0, y0, x1, y1 = renderer.face_box(index)
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= layout.band_top, index
        x, y, scale_x, scale_y = renderer.placement(index)
        assert y >= 0  # the top of the head too
        line = renderer.timing.line_at(float(renderer.times[index]))
        if line is not None:
            rows = layout.lyric_y, layout.lyric_y + renderer.lyrics.line(line.text).plain.height
            assert rows[0] >= y1 and rows[1] <= height, index
        if layout.portrait:
            shown.append(crop_w * scale_x / width)
        else:
            shown.append((min(y + crop_h * scale_y, height) - y) / height)
    if layout.portrait:
        assert max(renderer.face_box(i)[3] for i in range(renderer.frame_count)) < height * 0.6
    # (A face at the very bottom of its picture makes the bust smaller, and float.)
    if layout.portrait and chin != 0.95:  # the bust fills the top, ~1000 of 1080 pixels wide
        assert 0.85 <= min(shown) and max(shown) <= 1.0
    elif chin != 0.95:  # 70-80% of the height
        assert 0.70 <= min(shown) and max(shown) <= 0.80
    # In pixels: what the lyrics (and their band) change lies below the face.
    closest = int(np.argmax(motion.zoom))
    frame = renderer.render(closest).copy()
    renderer.timing.lines = []
    without_lyrics = renderer.render(closest)
    changed = np.flatnonzero(np.abs(frame.astype(int) - without_lyrics).max(axis=(1, 2)) > 0)
    assert changed.size and changed.min() >= renderer.face_box(closest)[3]


def test_a_title_at_the_start_and_the_credits_at_the_end(tmp_path):
    credits = ["Singing voice: a test voice (CC BY 3.0)", "Font: IPAexGothic"]
    renderer = renderer_for(
        tmp_path, seconds=4.0, title="きらきら", credits=credits, credits_from_s=2.5
    )
    plain = renderer_for(tmp_path, seconds=4.0)
    top, rest = slice(0, 60), slice(60, 180)

    def panel(index, rows):
        """Pixels the card's dark see-through panel (and its letters) change."""
        with_card = renderer.render(index)[rows].astype(int).sum(axis=2)
        without = plain.render(index)[rows].astype(int).sum(axis=2)
        return int((np.abs(with_card - without) > 150).sum())

    assert renderer._title_until == pytest.approx(1.5)  # the first line starts at 0.3 s
    assert panel(12, top) > 1000  # 0.5 s: the title card
    assert panel(40, top) == 0  # gone once the singing has begun
    assert panel(40, rest) == 0
    assert panel(95, rest) > 3000  # the credits, from 2.5 s


@pytest.mark.parametrize("size", [(1280, 720), (1080, 1920), (1080, 1080)])
def test_long_credits_never_cover_the_face(tmp_path, size):
    width, height = size
    credits = [
        f"Credit {n}: " + "a long licence notice with its author and address " * 3 for n in range(6)
    ]
    renderer = composed(
        tmp_path, width, height, title="きらきら", credits=credits, credits_from_s=4.0
    )
    last = renderer.frame_count - 1
    for index in range(round(4.0 * FPS), last + 1, 3):
        with_card = renderer.render(index).copy()
        card, renderer._credits = renderer._credits, None
        without = renderer.render(index)
        renderer._credits = card
        changed = np.abs(with_card.astype(int) - without).max(axis=2) > 0
        x0, y0, x1, y1 = (round(v) for v in renderer.face_box(index))
        assert not changed[max(y0, 0) : y1, max(x0, 0) : x1].any(), index
    assert changed.sum() > 0.1 * width * height  # the card is there at the end
    if width > height:  # the character stepped aside, its face whole in the frame
        x0, y0, x1, y1 = renderer.face_box(last)
        assert x0 >= 0 and x1 < width / 2


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
    data = path.read_bytes()
    assert data[4:8] == b"ftyp"
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: the index comes first


def test_frames_drawn_in_a_thread_are_the_frames_drawn_in_turn(tmp_path):
    """Drawing beside ffmpeg writes the same video, and pads a short song with silence."""
    audio = write_song(tmp_path, duration_s=1.0)["vocals"]
    frames = list(moving_frames(2 * FPS))

    def draw(index, buffer):
        np.copyto(buffer, frames[index])
        return buffer

    sizes = {}
    done = []
    for in_thread in (True, False):
        path = tmp_path / f"clip-{in_thread}.mp4"
        written = encode_frames(
            path, draw, 2 * FPS, width=160, height=90, fps=FPS, audio_path=audio,
            audio_until_s=2.0, in_thread=in_thread, progress=lambda d, t: done.append((d, t)),
        )  # fmt: skip
        assert written == 2 * FPS and done[-1] == (2 * FPS, 2 * FPS)
        info = read_media_info(path)
        assert info.duration_s == pytest.approx(2.0, abs=0.05)  # the video's, not the song's
        sizes[in_thread] = path.stat().st_size
    assert sizes[True] == sizes[False]


def test_an_error_while_drawing_in_the_thread_leaves_no_file(tmp_path):
    def draw(index, buffer):
        if index == 10:
            raise RuntimeError("the drawing failed")
        buffer[:] = index
        return buffer

    path = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError, match="drawing failed"):
        encode_frames(path, draw, 100, width=160, height=90, fps=FPS)
    assert not path.exists()


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
# The animate and preview stages


def _registry(*more):
    # The colored character is given (handmade), so the test needs no colorize stage.
    return load_stages(*more, "acgmake.stages.compose", "acgmake.stages.animate")


@pytest.fixture(scope="module")
def animated(tmp_path_factory):
    """The animate stage run once on a 2-second song, with the expressions strip."""
    from acgmake.pipeline import Reporter, run

    folder = tmp_path_factory.mktemp("animate")
    inputs = {
        **write_colored(folder / "in"),
        **write_song(folder / "in", duration_s=2.0),
        "colored_expressions": write_expressions(folder / "in"),
    }
    progress = []

    class Recorder(Reporter):
        def stage_progress(self, stage, done, total, note):
            progress.append((stage.name, done, total))

    result = run(
        _registry("acgmake.stages.preview"),
        folder / "run",
        ["clip", "preview_gif"],
        inputs=inputs,
        params={"animate": {"size": "320x180", "fps": 12, "end_card": 1.0}},
        seed=2,
        reporter=Recorder(),
    )
    return result, progress


def test_animate_stage_makes_a_clip_from_a_character_and_a_song(animated):
    result, progress = animated
    info = read_media_info(result.files["clip"])
    assert (info.video_codec, info.pixel_format, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert (info.width, info.height, info.fps) == (320, 180, 12)
    # The song lasts 2 s; its last line ends at 1.7 s and the credits stay 1 s after it.
    assert info.duration_s == pytest.approx(2.7, abs=0.1)
    assert ("animate", 33, 33) in progress
    manifest = json.loads((result.workdir / "manifest.json").read_text())
    assert any("IPAexGothic" in credit for credit in manifest["credits"])
    assert manifest["stages"]["animate"]["inputs"]["colored_expressions"]


def test_preview_stage_cuts_a_gif_and_a_webm(animated):
    result, _ = animated
    gif = read_media_info(result.files["preview_gif"])
    webm = read_media_info(result.files["preview_webm"])
    # 480 wide asked for, but a preview is never larger than its clip.
    assert (gif.video_codec, gif.width) == ("gif", 320) and not gif.audio_codec
    assert (webm.video_codec, webm.pixel_format, webm.audio_codec) == ("vp9", "yuv420p", "opus")
    assert webm.duration_s == pytest.approx(2.7, abs=0.15)  # shorter than 8 s: all of it
    assert result.files["preview_gif"].read_bytes()[:6] == b"GIF89a"


def test_ctrl_c_mid_render_leaves_no_clip_and_the_next_run_resumes(tmp_path):
    from acgmake.pipeline import Reporter, run

    inputs = {**write_colored(tmp_path / "in"), **write_song(tmp_path / "in", duration_s=2.0)}
    registry = _registry("acgmake.stages.subtitles")
    targets = ["subtitles_ass", "clip"]

    class CtrlC(Reporter):
        def stage_progress(self, stage, done, total, note):
            if stage.name == "animate" and done >= 12:
                raise KeyboardInterrupt

    params = {"animate": {"size": "320x180", "fps": 12}}
    with pytest.raises(KeyboardInterrupt):
        run(registry, tmp_path / "run", targets, inputs=inputs, params=params,
            reporter=CtrlC())  # fmt: skip
    assert (tmp_path / "run" / "lyrics.ass").exists()
    assert not (tmp_path / "run" / "clip.mp4").exists()
    assert not list((tmp_path / "run").glob(".*partial*"))
    result = run(registry, tmp_path / "run", targets, inputs=inputs, params=params)
    assert result.cached == ["subtitles"]
    assert read_media_info(result.files["clip"]).duration_s > 2.0


@pytest.mark.parametrize("size", ["1280", "1281x720", "axb", "32x32", "1280x720x2"])
def test_animate_refuses_a_bad_size(tmp_path, size):
    from acgmake.pipeline import run

    inputs = {**write_colored(tmp_path / "in"), **write_song(tmp_path / "in", duration_s=0.5)}
    with pytest.raises(UserError, match="--size"):
        run(_registry(), tmp_path / "run", ["clip"], inputs=inputs,
            params={"animate": {"size": size}})  # fmt: skip
    assert not (tmp_path / "run" / "clip.mp4").exists()


def test_sizes_by_name_and_by_number():
    from acgmake.stages.animate import parse_size

    assert parse_size("vertical") == (1080, 1920) == parse_size("1080x1920")
    assert parse_size("Square") == (1080, 1080)
    assert parse_size("1920×1080") == parse_size("1080p")
