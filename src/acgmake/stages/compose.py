"""The ``compose`` stage: a melody for the lyrics, one note per mora, written as MusicXML."""

from __future__ import annotations

import click

from acgmake import Artifact, Param, Stage, hookimpl


@hookimpl
def register_artifacts(register):
    register(
        Artifact(
            "lyrics",
            "lyrics.txt",
            "UTF-8 text in kana, a line per phrase, a blank line between sections",
        )
    )
    register(Artifact("score", "score.musicxml", "the melody with the lyrics on it (MusicXML)"))


def compose(ctx) -> None:
    from acgmake.music.melody import compose_melody
    from acgmake.music.musicxml import write_musicxml
    from acgmake.text.lyrics import read_lyrics

    phrases = read_lyrics(ctx.input("lyrics"))
    title = phrases[0].text if len(phrases[0].text) <= 40 else phrases[0].text[:40] + "…"
    melody = compose_melody(
        phrases,
        key=ctx.params["key"],
        mode=ctx.params["mode"],
        tempo_bpm=ctx.params["tempo"],
        seed=ctx.seed,
        title=title,
    )
    write_musicxml(melody, ctx.output("score"))
    morae = sum(len(phrase.morae) for phrase in phrases)
    ctx.log(
        f"{len(phrases)} lines, {morae} morae, {melody.key} {melody.mode} at "
        f"{melody.tempo_bpm} bpm: {melody.duration_s:.1f} s"
    )


@hookimpl
def register_stages(register):
    register(
        Stage(
            "compose",
            needs=("lyrics",),
            makes=("score",),
            run=compose,
            version="1",
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
                    120,
                    "tempo in beats (quarter notes) per minute",
                    click.IntRange(40, 240),
                ),
            ),
            help="Compose a melody for kana lyrics (one note per mora) and write it as "
            "MusicXML. Example: acgmake compose lyrics.txt --key G --tempo 110",
        )
    )
