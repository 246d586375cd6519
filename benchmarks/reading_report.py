"""How well acgmake reads real song lyrics: exact lines and mora accuracy per reader.

    python benchmarks/reading_report.py [--verbose] [--held-out]

The songs are ``tests/data/readings/*.tsv``: public-domain shōka, dōyō and folk songs in their
usual kanji spelling, each line with the kana it is sung to, written by hand (see the README
there). Three readers are compared on them:

- **OpenJTalk** — OpenJTalk's dictionary alone (``read_line(..., second_opinion=False)``);
- **Sudachi** — Sudachi's dictionary alone (its reading of every word, kana as written);
- **reconciled** — what acgmake sings: OpenJTalk, with Sudachi's second opinion and the rules
  of :mod:`acgmake.text.reconcile`.

A line is **exact** when its morae are the sung ones; **mora accuracy** is 1 − (mora edit
distance ÷ sung morae) over all lines. Both are given for all songs and for the held-out songs
(``set: held-out``), whose lines the rules were not built from. Spellings that sound the same
are not told apart: ー and the vowel it holds (とー = とう), を and お, ぢ and じ, づ and ず.
``--verbose`` lists every line a reader gets wrong; ``--held-out`` narrows that listing to the
held-out songs.
"""

from __future__ import annotations

import argparse
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SONGS = Path(__file__).resolve().parent.parent / "tests" / "data" / "readings"


@dataclass(frozen=True)
class Line:
    written: str
    sung: str  # hiragana, as sung (particles は/へ as わ/え)


@dataclass(frozen=True)
class Song:
    name: str  # the file's stem
    title: str
    lyricist: str
    year: str
    held_out: bool
    lines: tuple[Line, ...]


def load_songs(folder: Path = SONGS) -> list[Song]:
    """The songs of the evaluation set, in file-name order."""
    songs = []
    for path in sorted(folder.glob("*.tsv")):
        header, _, body = path.read_text("utf-8").partition("\n\n")
        fields = dict(line.split(": ", 1) for line in header.splitlines())
        lines = []
        for row in body.splitlines():
            if row.strip():
                written, sung = row.split("\t")
                lines.append(Line(written, sung))
        songs.append(
            Song(
                path.stem,
                fields["title"],
                fields["lyricist"],
                fields["year"],
                fields["set"] == "held-out",
                tuple(lines),
            )
        )
    return songs


_VOWEL_KANA = {"a": "あ", "i": "い", "u": "う", "e": "え", "o": "う"}  # ー after o: とー = とう
_VOWELS = {
    **dict.fromkeys("あかさたなはまやらわがざだばぱぁゃゎ", "a"),
    **dict.fromkeys("いきしちにひみりぎじぢびぴぃ", "i"),
    **dict.fromkeys("うくすつぬふむゆるぐずづぶぷぅゅゔ", "u"),
    **dict.fromkeys("えけせてねへめれげぜでべぺぇ", "e"),
    **dict.fromkeys("おこそとのほもよろをごぞどぼぽぉょ", "o"),
}
_SAME_SOUND = str.maketrans({"を": "お", "ぢ": "じ", "づ": "ず"})


def sung_morae(kana: str) -> tuple[str, ...]:
    """The morae of ``kana`` in one spelling per sound (see the module docstring)."""
    from acgmake.text.kana import kana_morae, to_hiragana

    morae = [to_hiragana(m).translate(_SAME_SOUND) for m, _ in kana_morae([kana])]
    for index, mora in enumerate(morae):
        if mora == "ー" and index:
            morae[index] = _VOWEL_KANA[_VOWELS.get(morae[index - 1][-1], "a")]
    return tuple(morae)


def edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def openjtalk_reader(line: str) -> str:
    from acgmake.text.reading import read_line

    return "".join(read_line(line, second_opinion=False).morae)


def reconciled_reader(line: str) -> str:
    from acgmake.text.reading import read_line

    return "".join(read_line(line).morae)


def sudachi_reader(line: str) -> str:
    """Sudachi's reading of every word; kana as written, the particles は and へ as sung."""
    from acgmake.text.kana import is_kana, to_hiragana
    from acgmake.text.reconcile import sudachi_words

    sung = []
    for word in sudachi_words(unicodedata.normalize("NFKC", line)):
        if all(is_kana(c) for c in word.surface):
            particle = word.pos == "助詞" and word.surface in ("は", "へ")
            sung.append({"は": "わ", "へ": "え"}[word.surface] if particle else word.surface)
        else:
            sung.append(to_hiragana(word.reading))
    return "".join(sung)


READERS: dict[str, Callable[[str], str]] = {
    "OpenJTalk": openjtalk_reader,
    "Sudachi": sudachi_reader,
    "reconciled": reconciled_reader,
}


@dataclass
class Score:
    lines: int = 0
    exact: int = 0
    morae: int = 0
    errors: int = 0  # mora edits

    def add(self, sung: str, read: str) -> bool:
        expected, got = sung_morae(sung), sung_morae(read)
        distance = edit_distance(expected, got)
        self.lines += 1
        self.exact += distance == 0
        self.morae += len(expected)
        self.errors += distance
        return distance == 0

    @property
    def exact_share(self) -> float:
        return self.exact / self.lines if self.lines else 0.0

    @property
    def mora_accuracy(self) -> float:
        return max(0.0, 1 - self.errors / self.morae) if self.morae else 0.0


def score(
    songs: list[Song], reader: Callable[[str], str]
) -> tuple[Score, Score, list[tuple[Song, Line, str]]]:
    """(all songs, held-out songs, the lines read wrong with what was read)."""
    everything, held_out, misses = Score(), Score(), []
    for song in songs:
        for line in song.lines:
            read = reader(line.written)
            right = everything.add(line.sung, read)
            if song.held_out:
                held_out.add(line.sung, read)
            if not right:
                misses.append((song, line, read))
    return everything, held_out, misses


def _forget_readings() -> None:
    """Empty the analysers' caches, so that each reader is timed reading every line itself."""
    from acgmake.text.reading import openjtalk_nodes
    from acgmake.text.reconcile import sudachi_words

    openjtalk_nodes.cache_clear()
    sudachi_words.cache_clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--verbose", action="store_true", help="list the lines read wrong")
    parser.add_argument(
        "--only", choices=("dev", "held-out"), help="list the misses of these songs only"
    )
    args = parser.parse_args(argv)
    songs = load_songs()
    held = [s for s in songs if s.held_out]
    print(
        f"{len(songs)} songs, {sum(len(s.lines) for s in songs)} lines "
        f"({len(held)} songs, {sum(len(s.lines) for s in held)} lines held out)\n"
    )
    print(
        f"{'reader':<11} {'exact lines':>17} {'mora acc.':>9}   {'held-out exact':>17} "
        f"{'mora acc.':>9}  {'time':>6}"
    )
    listing = []
    for name, reader in READERS.items():
        reader("夜空")  # dictionaries load outside the timing
        _forget_readings()
        started = time.perf_counter()
        everything, held_out, misses = score(songs, reader)
        seconds = time.perf_counter() - started
        print(
            f"{name:<11} {everything.exact:>4}/{everything.lines:<4} {everything.exact_share:>6.1%}"
            f" {everything.mora_accuracy:>9.1%}   {held_out.exact:>4}/{held_out.lines:<4} "
            f"{held_out.exact_share:>6.1%} {held_out.mora_accuracy:>9.1%}  {seconds:>5.2f}s"
        )
        listing.append((name, misses))
    if args.verbose:
        for name, misses in listing:
            print(f"\n{name} misses:")
            for song, line, read in misses:
                if args.only and (args.only == "held-out") != song.held_out:
                    continue
                mark = " (held out)" if song.held_out else ""
                print(f"  {song.title}{mark}: {line.written}")
                print(f"    sung {line.sung}\n    read {read}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
