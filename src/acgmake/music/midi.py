"""Writing a :class:`~acgmake.music.melody.Melody` as a standard MIDI file (``score.mid``).

Two tracks a DAW opens as they are: the melody (with each note's mora as a MIDI lyric event)
and its chords as sustained block chords below it, plus tempo, key and time signature. It is
for listening and for taking the song further by hand; Sinsy sings from the MusicXML score.
Any score acgmake can read becomes a MIDI file too (:func:`melody_of_score`).
"""

from __future__ import annotations

from pathlib import Path

from acgmake.music.melody import Melody
from acgmake.music.musicxml import Score

#: General MIDI programs (0-based): "Voice Oohs" for the melody, "String Ensemble 1" below it.
MELODY_PROGRAM = 53
CHORD_PROGRAM = 48
#: The chords sit in the octave below middle C, roots from C3 up to B3.
CHORD_ROOT_MIDI = 48


def midi_bytes(melody: Melody) -> bytes:
    """The melody and its chords as the bytes of a standard MIDI file (type 1)."""
    from music21 import chord, instrument, key, meter, note, stream, tempo
    from music21.midi.translate import music21ObjectToMidiFile

    score = stream.Score()
    voice = stream.Part()
    voice.partName = "Voice"
    singer = instrument.Vocalist()
    singer.midiProgram = MELODY_PROGRAM
    voice.insert(0, singer)
    voice.insert(0, tempo.MetronomeMark(number=melody.tempo_bpm))
    voice.insert(0, key.Key(melody.key.replace("b", "-"), melody.mode))
    voice.insert(0, meter.TimeSignature(melody.time_signature))
    offset = 0.0
    for item in melody.notes:
        if not item.is_rest:
            sung = note.Note(midi=item.midi, quarterLength=item.quarter_length)
            sung.lyric = item.lyric or None
            voice.insert(offset, sung)
        offset += item.quarter_length

    harmony = stream.Part()
    harmony.partName = "Chords"
    strings = instrument.StringInstrument()
    strings.midiProgram = CHORD_PROGRAM
    harmony.insert(0, strings)
    for symbol in melody.chords:
        root = CHORD_ROOT_MIDI + symbol.root
        tones = sorted(root + (pc - symbol.root) % 12 for pc in symbol.pitch_classes)
        block = chord.Chord(tones, quarterLength=symbol.quarter_length)
        block.volume.velocity = 56  # under the voice
        harmony.insert(symbol.offset, block)
    score.insert(0, voice)
    score.insert(0, harmony)
    return music21ObjectToMidiFile(score).writestr()


def write_midi(melody: Melody, path: str | Path) -> None:
    """Write the melody and its chords to ``path`` as a standard MIDI file."""
    Path(path).write_bytes(midi_bytes(melody))


def melody_of_score(score: Score) -> Melody:
    """A :class:`Melody` holding what a read score has: its sung notes, chords, tempo, key."""
    from acgmake.music.melody import Chord, Note

    notes = []
    position = 0.0
    for item in score.notes:
        if item.offset > position + 1e-9:
            notes.append(Note(None, item.offset - position))  # a gap, e.g. after grace notes
        notes.append(Note(item.midi, item.quarter_length, item.lyric))
        position = item.offset + item.quarter_length
    return Melody(
        notes=notes,
        key=score.key or "C",
        mode=score.mode,
        tempo_bpm=round(score.tempo_bpm),
        title=score.title,
        chords=[Chord(*chord) for chord in score.chords],
        time_signature=score.time_signature,
    )
