"""The ``compose`` stage (lyrics -> a melody as MusicXML) and the ``midi`` stage (score -> MIDI).

MIDI is a stage of its own rather than a second output of compose: ``acgmake song --score
my.musicxml`` gives the score, and the pipeline refuses a stage whose outputs were only partly
given; as its own step it also turns a user's score into MIDI.
"""

from __future__ import annotations

import click

from acgmake import Artifact, Param, Stage, hookimpl
from acgmake.music import MAX_SCORE_BYTES
from acgmake.text.lyrics import MAX_LYRICS_BYTES


@hookimpl
def register_artifacts(register):
    register(
        Artifact(
            "lyrics",
            "lyrics.txt",
            "UTF-8 text (Japanese in any script, English, romaji), a line per phrase, a blank "
            "line between sections",
            max_bytes=MAX_LYRICS_BYTES,
        )
    )
    register(
        Artifact(
            "score",
            "score.musicxml",
            "the melody with the lyrics on it (MusicXML)",
            max_bytes=MAX_SCORE_BYTES,
        )
    )
    register(Artifact("midi", "score.mid", "the melody and its chords as a MIDI file"))
    register(
        Artifact(
            "lyrics_shown",
            "lyrics_shown.json",
            "the lyrics as written (kanji, English, spaces), each sung mora tied to the "
            "characters it is sung from: what the karaoke and subtitles show",
        )
    )


def compose(ctx) -> None:
    from acgmake.music.melody import VOICE_RANGES, compose_melody
    from acgmake.music.musicxml import write_musicxml
    from acgmake.music.style import get_style
    from acgmake.text.lyrics import read_lyrics
    from acgmake.text.shown import shown_line

    phrases = read_lyrics(ctx.input("lyrics"))
    for phrase in phrases:
        for guess in phrase.guesses:
            ctx.log(guess.message(phrase.line))
    first = shown_line(phrases[0]).text
    title = first if len(first) <= 40 else first[:40] + "…"
    wanted = ctx.params["range"]
    if wanted == "auto":
        wanted = get_style(ctx.params["style"]).voice_range
    melody = compose_melody(
        phrases,
        voice_range=VOICE_RANGES[wanted],
        key=ctx.params["key"],
        mode=ctx.params["mode"],
        tempo_bpm=ctx.params["tempo"],
        seed=ctx.seed,
        title=title,
        style=ctx.params["style"],
        time_signature=ctx.params["time_signature"],
    )
    write_musicxml(melody, ctx.output("score"))
    morae = sum(len(phrase.morae) for phrase in phrases)
    ctx.log(
        f"{len(phrases)} lines, {morae} morae, {melody.style} in {melody.key} {melody.mode}, "
        f"{melody.time_signature} at {melody.tempo_bpm} bpm: {melody.duration_s:.1f} s"
    )


def midi(ctx) -> None:
    from acgmake.music.midi import melody_of_score, write_midi
    from acgmake.music.musicxml import read_score

    write_midi(melody_of_score(read_score(ctx.input("score"))), ctx.output("midi"))


def karaoke(ctx) -> None:
    from acgmake.text.lyrics import read_lyrics
    from acgmake.text.shown import write_shown

    write_shown(read_lyrics(ctx.input("lyrics")), ctx.output("lyrics_shown"))


@hookimpl
def register_stages(register):
    from acgmake.music.style import METERS, STYLES

    register(
        Stage(
            "compose",
            cost_s=0.5,
            needs=("lyrics",),
            makes=("score",),
            run=compose,
            version="5",  # 4: the title as shown (no furigana brackets); 5: --range
            params=(
                Param(
                    "key",
                    "auto",
                    "key of the melody: a note name such as C, G, Eb, F#; auto = G major or "
                    "E minor, whose notes the bundled voice sings in tune",
                ),
                Param("mode", "major", "major or minor", click.Choice(["major", "minor"])),
                Param(
                    "tempo",
                    None,
                    "tempo in quarter notes per minute [default: the style's: "
                    + ", ".join(f"{s.name} {s.tempo_bpm}" for s in STYLES.values())
                    + "]",
                    click.IntRange(40, 240),
                ),
                Param(
                    "time_signature",
                    "4/4",
                    "time signature of the melody",
                    click.Choice(list(METERS)),
                ),
                Param(
                    "range",
                    "auto",
                    "the notes the melody may use: narrow = E4-C5, where the bundled voice "
                    "sings best; wide = D4-D5, all it sings cleanly once the sing stage corrects "
                    "its pitch; auto = the style's (ballad wide, else narrow)",
                    click.Choice(["auto", "narrow", "wide"]),
                ),
                Param(
                    "style",
                    "pop",
                    "how the lyrics are set: "
                    + "; ".join(f"{s.name} = {s.description}" for s in STYLES.values()),
                    click.Choice(list(STYLES)),
                ),
            ),
            help="Compose a melody with chords for the lyrics (Japanese in any script, English "
            "or romaji; one note per mora) and write it as MusicXML. "
            "Example: acgmake compose lyrics.txt --style ballad --key F --mode minor",
        )
    )
    register(
        Stage(
            "midi",
            cost_s=0.1,
            needs=("score",),
            makes=("midi",),
            run=midi,
            version="1",
            help="Write a score's melody and chord symbols as a MIDI file for a DAW. "
            "Example: acgmake midi score.musicxml -o song.mid",
        )
    )
    register(
        Stage(
            "karaoke",
            cost_s=0.2,
            needs=("lyrics",),
            makes=("lyrics_shown",),
            run=karaoke,
            version="1",
            help="Tie each sung mora of the lyrics to the characters it is sung from "
            "(lyrics_shown.json), so that the clip's karaoke and the subtitles show the lyrics "
            "as written: kanji, English, spaces. Example: acgmake karaoke lyrics.txt",
        )
    )
