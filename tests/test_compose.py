"""The compose stage: melody from morae, MusicXML out and back, the lyrics file's checks."""

from __future__ import annotations

import dataclasses
import re
import time
import zipfile
from pathlib import Path

import pytest

from acgmake.errors import UserError
from acgmake.music.melody import VOICE_RANGE, compose_melody, parse_key
from acgmake.music.musicxml import MAX_SCORE_BYTES, lines_of, read_score, write_musicxml
from acgmake.music.report import Agreement, accent_agreement, register_by_role
from acgmake.pipeline import run
from acgmake.plugins import Plugins
from acgmake.testing import load_plugins
from acgmake.text.kana import parse_lyrics

EXAMPLES = Path(__file__).parent.parent / "examples"
STYLES = ("pop", "ballad", "upbeat")
LYRICS = """あめあがりの いけで
かえるが うたいだす
みずたまりに うつる

けろけろ けろけろ
ぴょんと はねたら
そらまで とどくよー
きゃっ
"""


def sung_lines(melody) -> list[list]:
    """The melody's notes in lines, as the rests between them split them."""
    lines, current = [], []
    for note in melody.notes:
        if note.is_rest:
            if current:
                lines.append(current)
            current = []
        else:
            current.append(note)
    return lines + ([current] if current else [])


def test_same_seed_same_melody_and_another_seed_another():
    phrases = parse_lyrics(LYRICS)
    first = compose_melody(phrases, seed=7)
    assert compose_melody(phrases, seed=7).notes == first.notes
    assert compose_melody(phrases, seed=8).notes != first.notes


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("key", "mode"), [("auto", "major"), ("auto", "minor"), ("Eb", "major")])
def test_every_mora_gets_one_note_in_the_voice_range_in_whole_bars(seed, key, mode):
    phrases = parse_lyrics(LYRICS)
    melody = compose_melody(
        phrases, key=key, mode=mode, seed=seed, tempo_bpm=100, style=STYLES[seed % 3]
    )
    # Never a mora dropped or added, and each lyric line stays one line of the melody.
    assert [[n.lyric for n in line] for line in sung_lines(melody)] == [
        list(p.morae) for p in phrases
    ]
    assert all(VOICE_RANGE[0] <= n.midi <= VOICE_RANGE[1] for n in melody.sung_notes())
    assert all(n.syllabic == "single" for n in melody.sung_notes())
    assert melody.notes[0].is_rest and melody.notes[0].quarter_length >= 1
    assert melody.notes[-1].is_rest
    assert melody.quarter_length % 4 == 0
    assert all((note.quarter_length * 4) % 1 == 0 for note in melody.notes)  # sixteenth grid


def test_melodies_move_by_step_end_sections_on_the_tonic_and_styles_differ_in_rhythm():
    phrases = parse_lyrics((EXAMPLES / "kaeru.txt").read_text("utf-8"))
    sixteenths, lengths = {}, {}
    for style in STYLES:
        steps = short = notes = 0
        total = 0.0
        for seed in range(8):
            melody = compose_melody(phrases, seed=seed, style=style)  # G major
            sung = melody.sung_notes()
            notes += len(sung)
            short += sum(n.quarter_length == 0.25 for n in sung)
            total += sum(n.quarter_length for n in sung)
            steps += sum(abs(a.midi - b.midi) <= 2 for a, b in zip(sung, sung[1:], strict=False))
            ends = [line[-1] for line in sung_lines(melody)]
            # The last line of each section resolves to G; every line ends on a long note.
            assert ends[3].midi % 12 == 7 and ends[-1].midi % 12 == 7
            assert all(end.quarter_length >= 1 for end in ends)
        assert steps / notes > 0.6, style
        sixteenths[style], lengths[style] = short / notes, total / notes
    # A ballad holds its notes longest and uses the fewest sixteenths; upbeat is the busiest.
    assert sixteenths["ballad"] < sixteenths["pop"] < sixteenths["upbeat"]
    assert lengths["ballad"] > lengths["pop"] > lengths["upbeat"]


def test_notes_on_beats_are_chord_tones_and_sections_end_on_the_tonic_chord():
    phrases = parse_lyrics((EXAMPLES / "natsu.txt").read_text("utf-8"))
    on_beat = chord_tones = 0
    for seed in range(10):
        melody = compose_melody(phrases, mode="minor", seed=seed)  # E minor
        position = 0.0
        for note in melody.notes:
            if not note.is_rest and position % 1 == 0:
                chord = next(
                    c for c in melody.chords if c.offset <= position < c.offset + c.quarter_length
                )
                on_beat += 1
                chord_tones += note.midi % 12 in chord.pitch_classes
            position += note.quarter_length
        assert (melody.chords[-1].root, melody.chords[-1].quality) == (4, "minor")
        assert len({(c.root, c.quality) for c in melody.chords}) >= 3
    assert chord_tones / on_beat > 0.9


def test_a_repeated_line_is_sung_to_the_same_tune():
    melody = compose_melody(parse_lyrics("ららら らら\nるるる\n\nららら らら\nるるる\n"), seed=3)
    lines = sung_lines(melody)
    assert [n.midi for n in lines[0]] == [n.midi for n in lines[2]]


@pytest.mark.parametrize(
    ("key", "mode", "message"),
    [
        ("H", "major", "unknown key 'H'"),
        ("C##", "major", "unknown key"),
        ("G#", "major", "G# major needs more than 7 sharps or flats; use Ab major"),
        ("C", "dorian", "unknown mode"),
    ],
)
def test_a_bad_key_is_a_user_error(key, mode, message):
    with pytest.raises(UserError, match=message):
        parse_key(key, mode)


def test_keys_read_in_the_usual_spellings():
    assert parse_key("eb", "major") == ("Eb", 3)
    assert parse_key("B♭", "minor") == ("Bb", 10)
    assert parse_key("auto", "minor") == ("E", 4)


def test_the_score_round_trips_through_music21_with_lyrics_tempo_and_key(tmp_path):
    from music21 import converter, harmony, key, meter, tempo

    phrases = parse_lyrics(LYRICS)
    melody = compose_melody(phrases, key="Eb", mode="major", tempo_bpm=96, seed=1, title="かえる")
    path = tmp_path / "score.musicxml"
    write_musicxml(melody, path)

    parsed = converter.parse(path)
    notes = [n for n in parsed.flatten().notes if not isinstance(n, harmony.Harmony)]
    assert len(notes) == sum(len(p.morae) for p in phrases)
    assert all(len(n.lyrics) == 1 and n.lyrics[0].syllabic == "single" for n in notes)
    assert [n.lyric for n in notes] == [m for p in phrases for m in p.morae]
    assert parsed.flatten().getElementsByClass(tempo.MetronomeMark)[0].number == 96
    assert parsed.flatten().getElementsByClass(key.KeySignature)[0].sharps == -3
    assert parsed.flatten().getElementsByClass(meter.TimeSignature)[0].ratioString == "4/4"
    assert parsed.metadata.bestTitle == "かえる"
    symbols = list(parsed.flatten().getElementsByClass(harmony.ChordSymbol))
    assert [s.offset for s in symbols] == [c.offset for c in melody.chords]
    assert symbols[-1].root().name == "E-"  # the song ends on the tonic chord
    # Spelled in the key: A-flat, never G-sharp, in E-flat major.
    assert not any(n.pitch.name in ("G#", "D#", "A#") for n in notes)

    score = read_score(path)
    assert score.tempo_bpm == 96 and score.beats_per_bar == 4
    assert [(n.midi, n.quarter_length, n.lyric) for n in score.notes] == [
        (n.midi, n.quarter_length, n.lyric) for n in melody.notes
    ]
    assert [[n.lyric for n in line] for line in lines_of(score.notes)] == [
        list(p.morae) for p in phrases
    ]


def test_sinsy_reads_the_written_score_note_for_note(tmp_path):
    from acgmake.voice.align import note_spans
    from acgmake.voice.sinsy import phoneme_labels

    melody = compose_melody(parse_lyrics(LYRICS), seed=2)
    path = tmp_path / "score.musicxml"
    write_musicxml(melody, path)
    spans = note_spans(phoneme_labels(path))
    assert len(spans) == len(melody.sung_notes())
    seconds = 60 / melody.tempo_bpm
    first = melody.notes[0].quarter_length + melody.notes[1].quarter_length * (
        melody.notes[1].is_rest
    )
    assert spans[0][0] == pytest.approx(first * seconds)  # no padding before the first rest
    assert "xx" not in {p.name for _, _, group in spans for p in group}  # every lyric read


# -- reading scores a user gives -----------------------------------------------------------

HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
NOTE = "<note><pitch><step>A</step><octave>4</octave></pitch><duration>1</duration>{}</note>"
REST = "<note><rest/><duration>1</duration></note>"
LYRIC = "<lyric><syllabic>single</syllabic><text>{}</text></lyric>"


def musicxml(*parts: str) -> str:
    """A partwise score with one part per argument (the notes of its only measure)."""
    ids = [f"P{i}" for i in range(1, len(parts) + 1)]
    listed = "".join(f'<score-part id="{i}"><part-name>{i}</part-name></score-part>' for i in ids)
    body = "".join(
        f'<part id="{i}"><measure number="1"><attributes><divisions>1</divisions></attributes>'
        f"{notes}</measure></part>"
        for i, notes in zip(ids, parts, strict=True)
    )
    return (
        HEADER
        + f'<score-partwise version="4.0"><part-list>{listed}</part-list>{body}</score-partwise>'
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("just text, not xml", "not well-formed XML"),
        (HEADER + "<score-partwise><part", "not well-formed XML"),
        (HEADER + "<html><body/></html>", "XML but not a MusicXML score (its root is <html>)"),
        (HEADER + "<score-timewise/>", "timewise MusicXML"),
        (
            HEADER + '<!DOCTYPE s [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;'
            '&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
            "<score-partwise>&c;</score-partwise>",
            "declares XML entities",
        ),
        (musicxml(REST * 4), "has no notes to sing"),
        (musicxml(NOTE.format("") * 4), "has no lyrics on its notes"),
    ],
)
def test_a_bad_score_is_a_user_error_before_anything_expands_it(tmp_path, content, message):
    path = tmp_path / "score.musicxml"
    path.write_text(content, encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(UserError, match=re.escape(message)) as caught:
        read_score(path)
    assert time.perf_counter() - started < 2
    assert "\n" not in caught.value.message


def test_an_oversized_score_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "score.musicxml"
    with open(path, "wb") as handle:
        handle.truncate(MAX_SCORE_BYTES + 1)
    with pytest.raises(UserError, match=r"scores are limited to 5 MB"):
        read_score(path)


def test_a_compressed_mxl_score_and_extra_parts_are_read(tmp_path):
    piano = NOTE.format("") * 4
    voice = REST + "".join(NOTE.format(LYRIC.format(kana)) for kana in "かえる")
    path = tmp_path / "score.mxl"  # what MuseScore saves; the voice is the part with lyrics
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "META-INF/container.xml",
            '<container><rootfiles><rootfile full-path="song.xml"/></rootfiles></container>',
        )
        archive.writestr("song.xml", musicxml(piano, voice))
    score = read_score(path)
    assert [n.lyric for n in score.sung_notes()] == ["か", "え", "る"]
    assert score.tempo_bpm == 100  # no tempo mark: what Sinsy assumes


# -- the stage -----------------------------------------------------------------------------


def compose_plugins() -> Plugins:
    return load_plugins(builtins=("acgmake.stages.compose",))


def test_the_compose_stage_writes_the_score(tmp_path):
    lyrics = tmp_path / "song.txt"
    lyrics.write_text(LYRICS, encoding="utf-8")
    result = run(
        compose_plugins().registry,
        tmp_path / "song.acgmake",
        ["score"],
        inputs={"lyrics": lyrics},
        params={"compose": {"key": "F", "mode": "minor", "tempo": 90}},
        seed=4,
    )
    score = read_score(result.files["score"])
    assert score.tempo_bpm == 90
    assert len(score.sung_notes()) == sum(len(p.morae) for p in parse_lyrics(LYRICS))
    assert score.title == "あめあがりの いけで"


def test_a_ballad_uses_the_wide_range_and_range_narrow_keeps_to_the_voices_best(tmp_path):
    lyrics = tmp_path / "song.txt"
    kaeru = Path(__file__).resolve().parents[1] / "examples" / "kaeru.txt"
    lyrics.write_text(kaeru.read_text("utf-8"), encoding="utf-8")
    spans = {}
    for wanted in ("auto", "narrow"):
        result = run(
            compose_plugins().registry,
            tmp_path / wanted,
            ["score"],
            inputs={"lyrics": lyrics},
            params={"compose": {"style": "ballad", "range": wanted}},
            seed=1,
        )
        notes = [note.midi for note in read_score(result.files["score"]).sung_notes()]
        spans[wanted] = (min(notes), max(notes))
    assert spans["narrow"][0] >= 64 and spans["narrow"][1] <= 72  # E4-C5
    assert 62 <= spans["auto"][0] and spans["auto"][1] <= 74  # D4-D5
    assert spans["auto"][0] < 64 or spans["auto"][1] > 72  # and it uses it


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "lyrics.txt is empty"),
        (b"\x00\x01\x02binary", "lyrics.txt looks like a binary file"),
        (b"\xff\xfe\x00k", "lyrics.txt looks like a binary file"),
        ("かえる\nきょうは 사랑\n".encode(), "line 2 has characters acgmake cannot sing (사랑)"),
        ("♪ ♪\n".encode(), "the lyrics have nothing to sing"),
    ],
)
def test_the_compose_stage_refuses_bad_lyrics_in_one_line(tmp_path, data, message):
    lyrics = tmp_path / "song.txt"
    lyrics.write_bytes(data)
    with pytest.raises(UserError) as caught:
        run(compose_plugins().registry, tmp_path / "run", ["score"], inputs={"lyrics": lyrics})
    assert caught.value.message.startswith(message)
    assert not (tmp_path / "run" / "score.musicxml").exists()


def test_the_example_scores_were_written_by_compose():
    scores = sorted((Path(__file__).parent.parent / "scores").glob("*.musicxml"))
    assert scores
    for path in scores:
        score = read_score(path)
        assert all(n.lyric for n in score.sung_notes())
        assert score.notes[0].is_rest and score.notes[-1].is_rest


def test_recomposing_gives_the_same_file_byte_for_byte(tmp_path):
    # Fixed part ids and no date stamp: a re-run does not invalidate the sing stage's cache.
    lyrics = tmp_path / "song.txt"
    lyrics.write_text(LYRICS, encoding="utf-8")
    first = run(compose_plugins().registry, tmp_path / "a", ["score"], inputs={"lyrics": lyrics})
    second = run(compose_plugins().registry, tmp_path / "b", ["score"], inputs={"lyrics": lyrics})
    assert first.files["score"].read_bytes() == second.files["score"].read_bytes()


# -- any lyrics, styles, time signatures, the score's validity, MIDI ----------------------

MIXED = """[verse]
夜空に輝く星を
私は東京へ行きます
か
あしたの ゆめを みた あさの ひかりの なかで きみが わらう そらの した

[chorus]
I love you forever
shining star 星(ほし)に ねがいを
きみと ずっと
"""


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("time_signature", ["4/4", "3/4", "2/4", "6/8"])
def test_every_line_keeps_its_morae_in_any_style_and_time_signature(style, time_signature):
    phrases = parse_lyrics(MIXED)
    assert max(len(p.morae) for p in phrases) >= 30 and min(len(p.morae) for p in phrases) == 1
    for seed in range(3):
        melody = compose_melody(phrases, seed=seed, style=style, time_signature=time_signature)
        # One note per mora, none dropped or added, each lyric line one line of the melody.
        assert [[n.lyric for n in line] for line in sung_lines(melody)] == [
            list(p.morae) for p in phrases
        ]
        assert all(VOICE_RANGE[0] <= n.midi <= VOICE_RANGE[1] for n in melody.sung_notes())
        bar = melody.bar_quarter_length
        assert melody.quarter_length % bar == 0 and melody.notes[0].quarter_length >= bar


def test_same_seed_same_score_in_every_style(tmp_path):
    phrases = parse_lyrics(MIXED)
    for style in STYLES:
        first, second = tmp_path / f"{style}1.musicxml", tmp_path / f"{style}2.musicxml"
        write_musicxml(compose_melody(phrases, seed=11, style=style), first)
        write_musicxml(compose_melody(phrases, seed=11, style=style), second)
        assert first.read_bytes() == second.read_bytes()
        other = compose_melody(phrases, seed=12, style=style)
        assert other.notes != compose_melody(phrases, seed=11, style=style).notes


def test_the_chorus_sits_higher_than_the_verse():
    phrases = parse_lyrics((EXAMPLES / "kaeru.txt").read_text("utf-8"))  # [verse], [chorus]
    verse = chorus = 0.0
    for seed in range(10):
        melody = compose_melody(phrases, seed=seed)
        assert melody.section_roles == ["verse", "chorus"]
        registers = register_by_role(phrases, melody)
        verse, chorus = verse + registers["verse"], chorus + registers["chorus"]
    assert chorus > verse + 5  # by half a semitone a song on average, at least


def test_a_repeated_section_is_the_chorus_and_sings_the_same():
    lyrics = "ほしが ふる\nよるに\n\nきみと ずっと\nいっしょに\n\nほしが ふる\nよるに\n"
    melody = compose_melody(parse_lyrics(lyrics), seed=2)
    assert melody.section_roles == ["chorus", "verse", "chorus"]
    lines = sung_lines(melody)
    assert [(n.midi, n.quarter_length) for n in lines[0] + lines[1]] == [
        (n.midi, n.quarter_length) for n in lines[4] + lines[5]
    ]


def test_the_melody_follows_the_pitch_accent_far_more_often_than_chance():
    heard, deaf = Agreement(), Agreement()
    for path in sorted(EXAMPLES.glob("*.txt")):
        phrases = parse_lyrics(path.read_text("utf-8"))
        blind = [dataclasses.replace(p, accent="") for p in phrases]
        for seed in range(4):
            heard.add(accent_agreement(phrases, compose_melody(phrases, seed=seed)))
            deaf.add(accent_agreement(phrases, compose_melody(blind, seed=seed)))
    assert heard.steps > 100
    assert heard.share > 0.7 > heard.chance + 0.2
    assert heard.share > deaf.share + 0.25
    assert heard.contradicting / heard.steps < 0.05


@pytest.mark.parametrize(
    ("style", "time_signature", "mode", "key"),
    [
        ("pop", "4/4", "major", "auto"),
        ("ballad", "3/4", "minor", "F#"),
        ("upbeat", "6/8", "major", "Eb"),
    ],
)
def test_the_score_is_valid_musicxml_4(tmp_path, style, time_signature, mode, key):
    from acgmake.music.schema import schema_errors

    melody = compose_melody(
        parse_lyrics(MIXED), seed=1, style=style, time_signature=time_signature, mode=mode, key=key
    )
    path = tmp_path / "score.musicxml"
    write_musicxml(melody, path)
    assert schema_errors(path) == []
    score = read_score(path)  # and music21 reads it back note for note, chords too
    assert [(n.midi, n.quarter_length, n.lyric) for n in score.notes] == [
        (n.midi, n.quarter_length, n.lyric) for n in melody.notes
    ]
    assert (score.time_signature, score.key, score.mode) == (time_signature, melody.key, mode)
    assert [(c[0], c[2], c[3]) for c in score.chords] == [
        (c.offset, c.root, c.quality) for c in melody.chords
    ]


def test_the_schema_check_catches_an_invalid_score(tmp_path):
    from acgmake.music.schema import schema_errors

    path = tmp_path / "score.musicxml"
    good = (Path(__file__).parent.parent / "scores" / "kaeru.musicxml").read_text("utf-8")
    path.write_text(good.replace("<syllabic>single<", "<syllabic>alone<", 1), encoding="utf-8")
    assert "syllabic" in " ".join(schema_errors(path))


def test_sinsy_sings_kanji_english_and_compound_time_note_for_note(tmp_path):
    from acgmake.voice.align import note_spans
    from acgmake.voice.sinsy import phoneme_labels

    melody = compose_melody(parse_lyrics(MIXED), seed=3, style="upbeat", time_signature="6/8")
    path = tmp_path / "score.musicxml"
    write_musicxml(melody, path)
    spans = note_spans(phoneme_labels(path))
    assert len(spans) == len(melody.sung_notes())
    assert "xx" not in {p.name for _, _, group in spans for p in group}


def test_the_midi_stage_writes_the_melody_and_chords(tmp_path):
    from music21 import converter

    lyrics = tmp_path / "song.txt"
    lyrics.write_text(MIXED, encoding="utf-8")
    result = run(
        compose_plugins().registry,
        tmp_path / "song.acgmake",
        ["midi"],
        inputs={"lyrics": lyrics},
        params={"compose": {"style": "ballad", "time_signature": "3/4"}},
        seed=4,
    )
    assert result.files["midi"].name == "score.mid"
    melody_part, chord_part = converter.parse(result.files["midi"]).parts
    notes = list(melody_part.stripTies().flatten().notes)
    score = read_score(result.files["score"])
    assert [(n.pitch.midi, n.lyric) for n in notes] == [
        (n.midi, n.lyric) for n in score.sung_notes()
    ]
    assert len(chord_part.stripTies().flatten().notes) == len(score.chords)


def test_a_users_score_skips_compose_and_still_gets_a_midi_file(tmp_path):
    from acgmake.pipeline import plan

    registry = compose_plugins().registry
    stages = plan(registry, ["midi"], given=["score"])
    assert [stage.name for stage in stages] == ["midi"]
    result = run(
        registry,
        tmp_path / "run",
        ["midi"],
        inputs={"score": Path(__file__).parent.parent / "scores" / "natsu.musicxml"},
    )
    assert result.files["midi"].read_bytes().startswith(b"MThd")


def test_the_compose_stage_takes_style_and_time_signature(tmp_path):
    lyrics = tmp_path / "song.txt"
    lyrics.write_text(LYRICS, encoding="utf-8")
    result = run(
        compose_plugins().registry,
        tmp_path / "song.acgmake",
        ["score"],
        inputs={"lyrics": lyrics},
        params={"compose": {"style": "ballad", "time_signature": "6/8"}},
    )
    score = read_score(result.files["score"])
    assert score.tempo_bpm == 76  # the ballad's tempo, as none was given
    assert score.time_signature == "6/8"


def test_a_deeply_nested_or_zip_bomb_score_is_refused_fast(tmp_path):
    deep = tmp_path / "deep.musicxml"
    depth = 100_000
    deep.write_text(
        HEADER
        + "<score-partwise><part-list/><part id='P1'>"
        + "<measure>" * depth
        + "</measure>" * depth
        + "</part></score-partwise>",
        encoding="utf-8",
    )
    bomb = tmp_path / "bomb.mxl"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("song.xml", b"<score-partwise>" + b" " * (MAX_SCORE_BYTES + 10))
    outside = tmp_path / "outside.musicxml"
    outside.write_text(
        HEADER + '<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><score-partwise>&x;'
        "</score-partwise>",
        encoding="utf-8",
    )
    for path, message in [
        (deep, "nests its XML elements more than"),
        (bomb, "over 5 MB uncompressed"),
        (outside, "declares XML entities"),
    ]:
        started = time.perf_counter()
        with pytest.raises(UserError, match=message):
            read_score(path)
        assert time.perf_counter() - started < 2
