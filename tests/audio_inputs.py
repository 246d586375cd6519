"""Small real inputs for the sing, accompany and mix tests: a score with chord symbols, a
SoundFont file made from scratch."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def write_score(path: Path, *, chords: bool = True, tempo_bpm: int = 120) -> Path:
    """A bar of rest, then two bars in G major: G A B C | D C B A | G (whole), a bar of rest;
    chord symbols G C | D D7 | G when ``chords``."""
    from music21 import harmony, key, meter, note, stream, tempo

    part = stream.Part()
    part.append(tempo.MetronomeMark(number=tempo_bpm))
    part.append(meter.TimeSignature("4/4"))
    part.append(key.Key("G"))
    part.append(note.Rest(quarterLength=4))
    for name, lyric in zip(
        ["G4", "A4", "B4", "C5", "D5", "C5", "B4", "A4"], "かえるのうたがきこ", strict=False
    ):
        sung = note.Note(name, quarterLength=1)
        sung.lyric = lyric
        part.append(sung)
    last = note.Note("G4", quarterLength=4)
    last.lyric = "え"
    part.append(last)
    part.append(note.Rest(quarterLength=4))
    measures = part.makeMeasures()
    if chords:
        for offset, figure in ((4, "G"), (6, "C"), (8, "D"), (10, "D7"), (12, "G")):
            bar = measures.getElementsByClass(stream.Measure)[int(offset // 4)]
            symbol = harmony.ChordSymbol(figure)
            symbol.writeAsChord = False
            bar.insert(offset % 4, symbol)
    stream.Score([measures]).write("musicxml", fp=path)
    return path


def write_tiny_soundfont(path: Path, frequency: float = 440.0) -> Path:
    """A valid one-preset SoundFont 2 file: a looped sine at ``frequency`` on key 69."""
    rate = 44000
    period = rate / frequency
    cycles = 220
    wave = np.sin(2 * np.pi * np.arange(int(round(period * cycles))) / period)
    pcm = np.concatenate([(wave * 20000).astype("<i2"), np.zeros(46, "<i2")])  # 46: spec pad

    def chunk(name: bytes, data: bytes) -> bytes:
        return name + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def listed(kind: bytes, *chunks: bytes) -> bytes:
        return chunk(b"LIST", kind + b"".join(chunks))

    def name20(text: str) -> bytes:
        return text.encode().ljust(20, b"\0")

    length = len(wave)
    loop_start, loop_end = int(period * 10), int(period * 210)
    info = listed(
        b"INFO",
        chunk(b"ifil", struct.pack("<HH", 2, 1)),
        chunk(b"isng", b"EMU8000\0"),
        chunk(b"INAM", b"tiny sine\0"),
    )
    samples = listed(b"sdta", chunk(b"smpl", pcm.tobytes()))
    hydra = listed(
        b"pdta",
        chunk(b"phdr", struct.pack("<20sHHHIII", name20("Sine"), 0, 0, 0, 0, 0, 0)
              + struct.pack("<20sHHHIII", name20("EOP"), 0, 0, 1, 0, 0, 0)),
        chunk(b"pbag", struct.pack("<HH", 0, 0) + struct.pack("<HH", 1, 0)),
        chunk(b"pmod", bytes(10)),
        chunk(b"pgen", struct.pack("<HH", 41, 0) + struct.pack("<HH", 0, 0)),
        chunk(b"inst", struct.pack("<20sH", name20("Sine"), 0)
              + struct.pack("<20sH", name20("EOI"), 1)),
        chunk(b"ibag", struct.pack("<HH", 0, 0) + struct.pack("<HH", 2, 0)),
        chunk(b"imod", bytes(10)),
        chunk(b"igen", struct.pack("<HH", 54, 1) + struct.pack("<HH", 53, 0)
              + struct.pack("<HH", 0, 0)),
        chunk(b"shdr", struct.pack("<20sIIIIIBbHH", name20("sine"), 0, length, loop_start,
                                   loop_end, rate, 69, 0, 0, 1)
              + struct.pack("<20sIIIIIBbHH", name20("EOS"), 0, 0, 0, 0, 0, 0, 0, 0, 0)),
    )  # fmt: skip
    body = b"sfbk" + info + samples + hydra
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path
