"""Writing a :class:`~acgmake.music.melody.Melody` as MusicXML, and reading a score back.

Written scores open in MuseScore and sing in Sinsy: MusicXML 4.0 (music21), one part, a
treble clef, key and time signature, a tempo mark, chord symbols (``<harmony>``, read back by
music21 as ``harmony.ChordSymbol``), one ``<lyric>`` with ``<syllabic>`` on every note, rests
split on beats, and a rehearsal mark ("Verse", "Chorus") above the staff where each section
begins. The files are valid against the MusicXML 4.0 schema (see :mod:`acgmake.music.schema`).
Scores read back may come from anywhere (MuseScore's ``.mxl`` too), so they are checked before
any XML library expands them: size, entity declarations (the "billion laughs" file), partwise
MusicXML, notes, lyrics.
"""

from __future__ import annotations

import io
import math
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from acgmake.errors import UserError
from acgmake.music import (
    MAX_BAR_QUARTERS,
    MAX_SCORE_BYTES,
    MAX_SCORE_NOTES,
    MAX_SONG_S,
    MAX_TEMPO_BPM,
    MIN_TEMPO_BPM,
    SUNG_MIDI_RANGE,
)
from acgmake.music.melody import _CHORUS_LABELS, Melody

if TYPE_CHECKING:
    import music21

#: MusicXML nests elements about 8 deep; far deeper is a crafted file (and would exhaust the
#: recursion of the XML writers and of music21).
MAX_XML_DEPTH = 64
#: The tempo Sinsy sings a score without a tempo mark at (measured: a quarter lasts 0.6 s).
SINSY_DEFAULT_TEMPO_BPM = 100.0
_ZIP_MAGIC = b"PK\x03\x04"
#: Characters XML 1.0 forbids (C0 controls but tab and line ends, surrogates, U+FFFE/U+FFFF)
#: or discourages (C1 controls): never text, and a score holding one is not XML at all.
_NOT_XML_TEXT = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: The note values a time signature counts in (``<beat-type>``).
_BEAT_TYPES = frozenset({"1", "2", "4", "8", "16", "32", "64"})
#: Quarter notes in a metronome mark's beat unit (``<beat-unit>``).
_BEAT_UNIT_QUARTERS = {
    "maxima": 32.0,
    "long": 16.0,
    "breve": 8.0,
    "whole": 4.0,
    "half": 2.0,
    "quarter": 1.0,
    "eighth": 0.5,
    "16th": 0.25,
    "32nd": 0.125,
    "64th": 0.0625,
}


# ---------------------------------------------------------------------------------------------
# Writing


def melody_to_score(melody: Melody) -> music21.stream.Score:
    """The melody as a music21 score: one voice part in measures, ready to write."""
    from music21 import (
        bar,
        clef,
        expressions,
        harmony,
        instrument,
        key,
        metadata,
        meter,
        note,
        stream,
        tempo,
        tie,
    )

    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = xml_text(melody.title) or "acgmake song"
    score.metadata.composer = "acgmake"
    part = stream.Part()
    part.id = "P1"  # fixed ids (music21 draws random ones): the same melody, the same bytes
    part.partName = "Voice"
    voice = instrument.Vocalist()
    voice.partId = "P1"  # what music21 writes as the part's id
    voice.instrumentId = "P1-I1"
    part.insert(0, voice)

    spell = _speller(melody.key, melody.mode)
    bar_ql = float(melody.bar_quarter_length)
    rest_sizes = _rest_sizes(melody.time_signature, bar_ql)
    measures: list[stream.Measure] = []
    position = 0.0  # quarter lengths from the start

    def measure_at(offset: float) -> stream.Measure:
        while len(measures) <= int(offset // bar_ql):
            measures.append(stream.Measure(number=len(measures) + 1))
        return measures[int(offset // bar_ql)]

    for item in melody.notes:
        remaining = item.quarter_length
        first = True
        while remaining > 1e-9:
            in_bar = position % bar_ql
            length = min(remaining, bar_ql - in_bar)
            if item.is_rest:
                for start, piece in _rest_pieces(in_bar, length, rest_sizes):
                    measure_at(position).insert(start, note.Rest(quarterLength=piece))
            else:
                sung = note.Note(spell(item.midi), quarterLength=length)
                lyric = xml_text(item.lyric or "")
                if first and lyric:
                    sung.lyrics = [note.Lyric(text=lyric, syllabic=item.syllabic or "single")]
                # A note longer than the rest of its bar continues, tied, in the next.
                if length < remaining - 1e-9:
                    sung.tie = tie.Tie("start" if first else "continue")
                elif not first:
                    sung.tie = tie.Tie("stop")
                measure_at(position).insert(in_bar, sung)
            position += length
            remaining -= length
            first = False

    for chord in melody.chords:
        # Chord symbols (<harmony>): shown by MuseScore, ignored by Sinsy, read by later stages.
        symbol = harmony.ChordSymbol(root=spell(60 + chord.root).name, kind=chord.quality)
        symbol.writeAsChord = False
        measure_at(chord.offset).insert(chord.offset % bar_ql, symbol)

    for offset, role in section_starts(melody):
        # A rehearsal mark (shown boxed by MuseScore, ignored by Sinsy) names each section, so
        # the later stages (the clip's bigger motion in the chorus) know where it is. Placed
        # above the staff: without placement="above" MuseScore puts it below, under the lyrics.
        mark = expressions.RehearsalMark(role.capitalize())
        mark.placement = "above"
        measure_at(offset).insert(offset % bar_ql, mark)

    opening = measures[0]
    opening.insert(0, clef.TrebleClef())
    opening.insert(0, key.Key(melody.key.replace("b", "-"), melody.mode))
    opening.insert(0, meter.TimeSignature(melody.time_signature))
    opening.insert(0, tempo.MetronomeMark(number=melody.tempo_bpm))
    measures[-1].rightBarline = bar.Barline("final")
    for measure in measures:
        part.append(measure)
    score.insert(0, part)
    return score


def section_starts(melody: Melody) -> list[tuple[float, str]]:
    """(offset of its first note in quarter lengths, role) of each section of ``melody``.

    The melody keeps each section's role but not where it starts: each phrase is a run of
    notes between rests, and a new section begins where the lyric line numbers jump (a blank or
    label line between); failing that, at the longest rests (a bar is put between sections).
    """
    roles = melody.section_roles
    starts: list[float] = []
    rests_before: list[float] = []
    position, rest = 0.0, 0.0
    for item in melody.notes:
        if item.is_rest:
            rest += item.quarter_length
        elif rest or not starts:
            starts.append(position)
            rests_before.append(rest)
            rest = 0.0
        position += item.quarter_length
    if not roles or not starts:
        return []
    wanted = len(roles) - 1
    lines = melody.phrase_lines if len(melody.phrase_lines) == len(starts) else []
    jumps = [i for i in range(1, len(lines)) if lines[i] - lines[i - 1] > 1]
    if len(jumps) != wanted:
        by_rest = sorted(range(1, len(starts)), key=lambda i: (-rests_before[i], i))
        jumps = sorted(by_rest[:wanted])
    firsts = [0, *jumps]
    return [(starts[i], role) for i, role in zip(firsts, roles, strict=False)]


def xml_text(text: str) -> str:
    """``text`` without the characters XML cannot hold (control characters, U+FFFE, ...)."""
    return _NOT_XML_TEXT.sub("", text)


def musicxml_bytes(melody: Melody) -> bytes:
    """The melody as the bytes of a MusicXML 4.0 file (UTF-8)."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    xml = GeneralObjectExporter(melody_to_score(melody)).parse()
    # music21 stamps today's date; without it a re-composed score is byte-identical, so the
    # sing stage's cache (keyed on the score's hash) still holds.
    return re.sub(rb"\s*<encoding-date>[^<]*</encoding-date>", b"", xml, count=1)


def write_musicxml(melody: Melody, path: str | Path) -> None:
    """Write the melody to ``path`` as MusicXML (what ``score.musicxml`` holds)."""
    Path(path).write_bytes(musicxml_bytes(melody))


def _speller(tonic: str, mode: str):
    """A function MIDI number -> music21 Pitch spelled in the key (A♭ in E♭ major, not G♯;
    the raised 7th of a minor key as a sharpened 7th degree, D♯ in E minor)."""
    from music21 import key, pitch

    scale = key.Key(tonic.replace("b", "-"), mode).getPitches()[:7]
    names = {p.pitchClass: p.name for p in scale}
    if mode == "minor":
        raised = scale[6].transpose("A1")
        names.setdefault(raised.pitchClass, raised.name)

    def spell(midi: int) -> pitch.Pitch:
        name = names.get(midi % 12)
        if name is None:
            return pitch.Pitch(midi=midi)
        spelled = pitch.Pitch(name)
        spelled.octave = 4
        spelled.octave += (midi - spelled.midi) // 12  # B#3 and Cb5 keep their written octave
        return spelled

    return spell


def _rest_sizes(time_signature: str, bar_ql: float) -> tuple[float, ...]:
    """Rest lengths that notation keeps on their own beats, longest first: a whole bar, half
    bars in 4/4, a beat (a dotted quarter in 6/8), eighths, sixteenths."""
    beat = 1.5 if time_signature.endswith("/8") else 1.0
    halves = (2.0,) if time_signature == "4/4" else ()
    return (bar_ql, *halves, beat, 0.5, 0.25)


def _rest_pieces(
    start: float, length: float, sizes: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5, 0.25)
) -> list[tuple[float, float]]:
    """(offset in bar, length) of rests that fill ``length`` from ``start``, each on its beat:
    a whole bar, halves on beats 1 and 3, beats, eighths between (``sizes``)."""
    pieces = []
    end = start + length
    while start < end - 1e-9:
        for size in sizes:
            if start % size < 1e-9 and start + size <= end + 1e-9:
                break
        else:
            size = end - start
        pieces.append((start, size))
        start += size
    return pieces


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class ScoreNote:
    """A note or rest of the sung part; tied notes are one ``ScoreNote``."""

    offset: float  # quarter lengths from the start of the score
    quarter_length: float
    midi: int | None  # None for a rest
    lyric: str  # "" for a rest or a note without a lyric

    @property
    def is_rest(self) -> bool:
        return self.midi is None


@dataclass
class Score:
    """What the sing stage needs from a score: the sung part's notes, tempo and metre."""

    notes: list[ScoreNote]
    tempo_bpm: float  # the first tempo mark
    beats_per_bar: int  # quarter-note beats in the first bar's time signature
    title: str = ""
    time_signature: str = "4/4"  # the first one, as written
    key: str = ""  # tonic of the first key ("G", "Eb"); "" when the score has none
    mode: str = "major"
    #: chord symbols: (offset, quarter length, root pitch class, MusicXML kind), in order
    chords: list[tuple[float, float, int, str]] = field(default_factory=list)
    #: where each section begins: (offset, "verse" or "chorus"), from rehearsal marks or
    #: section words ("Chorus", "サビ"); empty when the score marks none
    sections: list[tuple[float, str]] = field(default_factory=list)

    def sung_notes(self) -> list[ScoreNote]:
        return [n for n in self.notes if not n.is_rest]


def read_score(path: str | Path) -> Score:
    """The sung part of the MusicXML score at ``path`` (``.musicxml``, ``.xml`` or ``.mxl``).

    The part sung is the one with the most lyrics. Raises :class:`UserError` for a file that is
    too large, not XML, declares entities, is not partwise MusicXML, has no notes or lyrics, a
    tempo outside 20–400 bpm, notes no voice sings, or lasts longer than acgmake sings.
    """
    from music21 import converter

    xml = sinsy_xml(path)
    name = Path(path).name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # music21 warns, then raises, on a broken measure
            parsed = converter.parseData(xml.decode("utf-8"), format="musicxml")
    except Exception as error:  # music21 raises many kinds on malformed scores
        raise UserError(
            f"{name} is not a MusicXML score music21 can read ({_one_line(error)}); "
            "export it again from your notation program"
        ) from None
    parts = list(parsed.parts) if hasattr(parsed, "parts") else [parsed]
    if not parts:
        raise UserError(f"{name} has no part to sing")
    return _score_from_part(parts[0], parsed, name)


def _score_from_part(part, parsed, name: str) -> Score:
    from music21 import chord, harmony, meter

    notes: list[ScoreNote] = []
    for element in part.flatten().notesAndRests:
        length = float(element.quarterLength)
        if length <= 0 or isinstance(element, harmony.Harmony):
            continue  # grace notes take no time; chord symbols are not sung
        offset = float(element.getOffsetInHierarchy(part))
        if element.isRest:
            if notes and notes[-1].is_rest:
                notes[-1] = ScoreNote(notes[-1].offset, notes[-1].quarter_length + length, None, "")
            else:
                notes.append(ScoreNote(offset, length, None, ""))
            continue
        pitches = element.pitches if isinstance(element, chord.Chord) else [element.pitch]
        top = max(pitches, key=lambda p: p.ps)  # Sinsy sings one note of a chord: the top one
        midi = _sung_midi(top, element, name)
        tie = element.tie.type if element.tie is not None else None
        if tie in ("stop", "continue") and notes and notes[-1].midi == midi:
            previous = notes[-1]
            notes[-1] = ScoreNote(
                previous.offset, previous.quarter_length + length, midi, previous.lyric
            )
            continue
        notes.append(ScoreNote(offset, length, midi, (element.lyric or "").strip()))
        if len(notes) > MAX_SCORE_NOTES:
            raise UserError(
                f"{name} has more than {MAX_SCORE_NOTES} notes in its sung part; "
                "split the song into shorter scores"
            )
    sung = [n for n in notes if not n.is_rest]
    if not sung:
        raise UserError(f"{name} has no notes to sing; write a melody with lyrics on its notes")
    if not any(n.lyric for n in sung):
        raise UserError(
            f"{name} has no lyrics on its notes; Sinsy sings only notes with lyrics — add a "
            "kana lyric to each note (MuseScore: select the first note, Ctrl+L)"
        )
    tempos = _tempos_of(parsed, name)
    tempo_bpm = tempos[0][1] if tempos else SINSY_DEFAULT_TEMPO_BPM
    _check_length(notes, tempos, name)
    signatures = list(part.flatten().getElementsByClass(meter.TimeSignature))
    bar = float(signatures[0].barDuration.quarterLength) if signatures else 4.0
    if not 0 < bar <= MAX_BAR_QUARTERS:
        raise UserError(
            f"{name} has a bar of {signatures[0].ratioString} ({bar:g} quarter notes); "
            f"acgmake reads bars of up to {MAX_BAR_QUARTERS} quarter notes — fix the time "
            "signature in your notation program"
        )
    beats = round(bar)
    title = ""
    if parsed.metadata is not None:
        title = parsed.metadata.bestTitle or ""
    written = signatures[0].ratioString if signatures else "4/4"
    tonic, mode = _key_of(part)
    return Score(
        notes,
        tempo_bpm,
        max(1, beats),
        title,
        written,
        tonic,
        mode,
        _chords_of(part),
        _sections_of(part),
    )


def _sung_midi(pitch, element, name: str) -> int:
    """The MIDI note of ``pitch``; UserError when no voice sings it. (music21's own ``midi``
    folds a pitch outside 0–127 back into range, which would sing another note.)"""
    low, high = SUNG_MIDI_RANGE
    midi = round(pitch.ps)
    if not low <= midi <= high:
        where = "below" if midi < low else "above"
        raise UserError(
            f"{name} has a note at {pitch.nameWithOctave} (MIDI {midi}) in measure "
            f"{element.measureNumber}, {where} what a voice sings; write the melody between "
            f"C1 and C7 (MIDI {low}–{high})"
        )
    return midi


def _tempos_of(parsed, name: str) -> list[tuple[float, float]]:
    """(offset, quarter notes per minute) of each tempo mark, in order; UserError for a tempo
    outside :data:`MIN_TEMPO_BPM`..:data:`MAX_TEMPO_BPM`."""
    from music21 import tempo

    tempos = []
    for mark in parsed.flatten().getElementsByClass(tempo.MetronomeMark):
        try:
            bpm = mark.getQuarterBPM()
        except (ArithmeticError, TypeError, ValueError):  # a beat unit of no length
            bpm = float("nan")
        if bpm is None:
            continue  # a mark with words only ("Allegro"), no number
        _check_tempo(float(bpm), name, mark.measureNumber)
        tempos.append((float(mark.getOffsetInHierarchy(parsed)), float(bpm)))
    return sorted(tempos, key=lambda mark: mark[0])  # stable: the first written wins a tie


def _check_tempo(bpm: float, name: str, measure, written: str = "") -> None:
    if MIN_TEMPO_BPM <= bpm <= MAX_TEMPO_BPM:  # False for NaN too
        return
    shown = written or f"{bpm:g}"
    raise UserError(
        f"{name} sets a tempo of {shown} quarter notes per minute in measure {measure}; "
        f"acgmake sings tempos from {MIN_TEMPO_BPM:g} to {MAX_TEMPO_BPM:g} — fix the tempo "
        "mark in your notation program"
    )


def _check_length(notes: list[ScoreNote], tempos: list[tuple[float, float]], name: str) -> None:
    """UserError when the score lasts longer than :data:`MAX_SONG_S` at its tempos."""
    end = notes[-1].offset + notes[-1].quarter_length
    seconds, position, bpm = 0.0, 0.0, SINSY_DEFAULT_TEMPO_BPM
    for offset, mark_bpm in tempos:
        if offset >= end:
            break
        seconds += max(0.0, offset - position) * 60.0 / bpm
        position, bpm = max(position, offset), mark_bpm
    seconds += max(0.0, end - position) * 60.0 / bpm
    if not seconds <= MAX_SONG_S:
        minutes = seconds / 60
        length = f"{minutes:,.0f} minutes" if minutes < 1e6 else "over a million minutes"
        raise UserError(
            f"{name} lasts {length} at its tempo; acgmake sings scores of up to "
            f"{MAX_SONG_S / 60:.0f} minutes — split the song into shorter scores"
        )


def _one_line(error: BaseException, limit: int = 200) -> str:
    """``error`` as ``Kind: message`` on one line, at most ``limit`` characters."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: Words that name a section in a text direction (any rehearsal mark starts one); those of a
#: chorus are the ones that mark a chorus in the lyrics.
_VERSE_WORDS = ("verse", "bridge", "intro", "outro", "aメロ", "bメロ", "a メロ", "b メロ")


def _sections_of(part) -> list[tuple[float, str]]:
    """(offset, "verse" or "chorus") where each section begins, in order: every rehearsal mark
    starts one, as does a text direction that names a section."""
    from music21 import expressions

    sections: list[tuple[float, str]] = []
    for element in part.flatten().getElementsByClass(
        (expressions.RehearsalMark, expressions.TextExpression)
    ):
        text = str(element.content or "").strip().lower()
        chorus = any(word in text for word in _CHORUS_LABELS)
        if not chorus and not isinstance(element, expressions.RehearsalMark):
            if not any(word in text for word in _VERSE_WORDS):
                continue  # "rit.", "softly": not a section
        offset = float(element.getOffsetInHierarchy(part))
        role = "chorus" if chorus else "verse"
        if sections and abs(sections[-1][0] - offset) < 1e-6:
            sections[-1] = (offset, role)
        else:
            sections.append((offset, role))
    return sections


def _key_of(part) -> tuple[str, str]:
    from music21 import key

    found = list(part.flatten().getElementsByClass(key.KeySignature))
    if not found:
        return "", "major"
    signature = found[0]
    if not isinstance(signature, key.Key):
        signature = signature.asKey("major")
    mode = signature.mode if signature.mode in ("major", "minor") else "major"
    return signature.tonic.name.replace("-", "b"), mode


def _chords_of(part) -> list[tuple[float, float, int, str]]:
    """The part's chord symbols, each lasting until the next one (or the end of the part)."""
    from music21 import harmony

    end = float(part.highestTime)
    symbols = [
        (float(symbol.getOffsetInHierarchy(part)), symbol)
        for symbol in part.flatten().getElementsByClass(harmony.ChordSymbol)
        if symbol.root() is not None
    ]
    chords = []
    for index, (offset, symbol) in enumerate(symbols):
        until = symbols[index + 1][0] if index + 1 < len(symbols) else end
        if until > offset:
            chords.append((offset, until - offset, symbol.root().pitchClass, symbol.chordKind))
    return chords


def sinsy_xml(path: str | Path) -> bytes:
    """The score at ``path`` as Sinsy should read it: UTF-8 MusicXML of the one sung part.

    The file is checked (size, well-formed, no entity declarations, partwise MusicXML)
    without expanding anything, then written back with only the part that has the most
    lyrics, since Sinsy sings every part one after the other.
    """
    from xml.etree.ElementTree import tostring

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    path = Path(path)
    name = path.name
    data = _read_limited(path)
    if data.startswith(_ZIP_MAGIC):
        data = _unzip_score(data, name)
    try:
        root = fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise UserError(
            f"{name} declares XML entities, which acgmake does not expand (a crafted file can "
            "use them to fill the memory); export the score again from your notation program"
        ) from None
    except ParseError as error:
        raise UserError(
            f"{name} is not well-formed XML ({error}); give a MusicXML score "
            "(.musicxml, .xml or .mxl)"
        ) from None
    except LookupError as error:  # <?xml encoding="..."?> names no encoding there is
        raise UserError(
            f"{name} declares a text encoding that does not exist ({error}); save it again "
            "as UTF-8 MusicXML"
        ) from None
    if _deeper_than(root, MAX_XML_DEPTH):
        raise UserError(
            f"{name} nests its XML elements more than {MAX_XML_DEPTH} deep (a MusicXML score "
            "nests about 8); it is not a score a notation program wrote"
        )
    tag = root.tag.rsplit("}", 1)[-1]
    if tag == "score-timewise":
        raise UserError(
            f"{name} is timewise MusicXML, which Sinsy cannot read; export it as (partwise) "
            "MusicXML from your notation program"
        )
    if tag != "score-partwise":
        raise UserError(f"{name} is XML but not a MusicXML score (its root is <{tag}>)")
    parts = root.findall("part")
    if not parts:
        raise UserError(f"{name} has no part to sing")
    sung = max(parts, key=lambda part: len(part.findall("./measure/note/lyric")))
    for part in parts:
        if part is not sung:
            root.remove(part)
    part_list = root.find("part-list")
    if part_list is not None:
        for entry in part_list.findall("score-part"):
            if entry.get("id") != sung.get("id"):
                part_list.remove(entry)
    _check_written_tempos(sung, name)
    _check_time_signatures(sung, name)
    # Sinsy picks its lyric dictionary by the declared encoding: always declare UTF-8.
    body = tostring(root, encoding="unicode").encode("utf-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _check_written_tempos(part, name: str) -> None:
    """UserError for a tempo Sinsy would be given outside 20–400 quarter notes per minute:
    a ``<sound tempo>`` (always in quarter notes) or a metronome mark's ``<per-minute>``."""
    for number, measure in enumerate(part.iter("measure"), start=1):
        where = _measure_number(measure, number)
        for sound in measure.iter("sound"):
            written = sound.get("tempo")
            if written is not None:
                bpm = _number(written)
                _check_tempo(float("nan") if bpm is None else bpm, name, where, _shown(written))
        for metronome in measure.iter("metronome"):
            per_minute = metronome.find("per-minute")
            bpm = _number(per_minute.text) if per_minute is not None else None
            if bpm is None:
                continue  # words such as "c. 120" or "120-132", or a metric modulation
            unit = (metronome.findtext("beat-unit") or "quarter").strip()
            dots = len(metronome.findall("beat-unit-dot"))
            quarters = _BEAT_UNIT_QUARTERS.get(unit, 1.0) * (2 - 0.5**dots)
            _check_tempo(bpm * quarters, name, where, _shown(per_minute.text))


def _check_time_signatures(part, name: str) -> None:
    """UserError for a time signature that is not whole beats of a note value, or whose bar
    is longer than :data:`MAX_BAR_QUARTERS` (music21 takes minutes over a bar of a million
    beats)."""
    for number, measure in enumerate(part.iter("measure"), start=1):
        where = _measure_number(measure, number)
        for signature in measure.iter("time"):
            beats = [(b.text or "").strip() for b in signature.findall("beats")]
            types = [(t.text or "").strip() for t in signature.findall("beat-type")]
            if not _bar_quarters(beats, types) <= MAX_BAR_QUARTERS:
                written = "+".join(beats) + "/" + "+".join(types)
                raise UserError(
                    f"{name} has a time signature of {_shown(written)} in measure {where}; "
                    f"acgmake reads bars of whole beats of up to {MAX_BAR_QUARTERS} quarter "
                    "notes (e.g. 4/4, 6/8) — fix the time signature in your notation program"
                )


def _measure_number(measure, number: int) -> str:
    """The measure's number as written (on one line), else its place in the part."""
    written = " ".join((measure.get("number") or "").split())
    return written[:20] or str(number)


def _bar_quarters(beats: list[str], types: list[str]) -> float:
    """Quarter notes in a bar of ``<beats>`` (such as "3" or "3+2") over ``<beat-type>``s;
    infinity when they are not whole beats of a note value."""
    if len(beats) != len(types):
        return math.inf
    quarters = 0.0
    for count, unit in zip(beats, types, strict=True):
        counts = [c.strip() for c in count.split("+")]
        if unit not in _BEAT_TYPES or not all(c.isdigit() and len(c) <= 3 for c in counts):
            return math.inf
        quarters += sum(int(c) for c in counts) * 4 / int(unit)
    return quarters


def _number(text: str | None) -> float | None:
    """``text`` as a number (NaN and infinity too); None when it is not one."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _shown(text: str) -> str:
    shown = " ".join(text.split())
    return repr(shown if len(shown) <= 20 else shown[:20] + "…")


def _deeper_than(root, limit: int) -> bool:
    """Whether the element tree under ``root`` is more than ``limit`` levels deep (walked
    without recursion, so a crafted file cannot exhaust the stack here)."""
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in element)
    return False


def _read_limited(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_SCORE_BYTES:
            raise UserError(
                f"{path.name} is {size / 1024 / 1024:.1f} MB; scores are limited to "
                f"{MAX_SCORE_BYTES // 1024 // 1024} MB (a song's MusicXML is well under 1 MB)"
            )
        return path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read the score {path}: {error.strerror or error}") from None


def _unzip_score(data: bytes, name: str) -> bytes:
    """The MusicXML inside a compressed ``.mxl`` file, read no further than the size limit."""
    from defusedxml.ElementTree import fromstring

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            inner = ""
            if "META-INF/container.xml" in names:
                with archive.open("META-INF/container.xml") as handle:
                    container = fromstring(handle.read(64 * 1024), forbid_entities=True)
                rootfile = container.find(".//{*}rootfile")
                inner = rootfile.get("full-path", "") if rootfile is not None else ""
            if inner not in names:
                inner = next(
                    (n for n in names if n.endswith((".xml", ".musicxml")) and "/" not in n), ""
                )
            if not inner:
                raise UserError(f"{name} is a zip file with no MusicXML score in it")
            with archive.open(inner) as handle:
                xml = handle.read(MAX_SCORE_BYTES + 1)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UserError(
            f"{name} looks like a compressed .mxl score but cannot be opened ({error})"
        ) from None
    except Exception as error:  # defusedxml on a bad container.xml
        if isinstance(error, UserError):
            raise
        raise UserError(f"{name} has an unreadable META-INF/container.xml ({error})") from None
    if len(xml) > MAX_SCORE_BYTES:
        raise UserError(
            f"the score inside {name} is over {MAX_SCORE_BYTES // 1024 // 1024} MB uncompressed"
        )
    return xml


def lines_of(notes: list[ScoreNote]) -> list[list[ScoreNote]]:
    """The sung notes grouped into lines: a rest ends a line."""
    lines: list[list[ScoreNote]] = [[]]
    for item in notes:
        if item.is_rest:
            if lines[-1]:
                lines.append([])
        else:
            lines[-1].append(item)
    return [line for line in lines if line]
