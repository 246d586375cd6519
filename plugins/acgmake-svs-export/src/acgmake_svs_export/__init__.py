"""acgmake-svs-export: the score as a project for singing editors (OpenUtau, UTAU,
Synthesizer V, VOCALOID), written by LibreSVIP and checked by reading each file back."""

from __future__ import annotations

from acgmake import Artifact, Stage, StageContext, UserError, hookimpl

__version__ = "0.1.0"

#: kind -> (file name in the run folder, what it is): LibreSVIP's converter of the same name.
FORMATS = {
    "ustx": ("score.ustx", "the score as an OpenUtau project"),
    "ust": ("score.ust", "the score as an UTAU project (Shift-JIS)"),
    "svp": ("score.svp", "the score as a Synthesizer V Studio project"),
    "vsqx": ("score.vsqx", "the score as a VOCALOID 4 project"),
}
#: LibreSVIP's time unit: ticks per quarter note.
TICKS_PER_QUARTER = 480


@hookimpl
def register_artifacts(register):
    for kind, (filename, description) in FORMATS.items():
        register(Artifact(kind, filename, description))


def score_notes(score) -> list[tuple[str, int, int, int]]:
    """(lyric, MIDI note, start, length) of each sung note with a lyric in ``score`` (an
    :class:`acgmake.music.musicxml.Score`), times in LibreSVIP's ticks: what every exported
    project must hold."""
    return [
        (
            note.lyric,
            int(note.midi),
            round(note.offset * TICKS_PER_QUARTER),
            round(note.quarter_length * TICKS_PER_QUARTER),
        )
        for note in score.sung_notes()
        if note.lyric and note.midi is not None
    ]


def score_project(score):
    """``score`` as a LibreSVIP project: one singing track, its tempo and time signature.

    Built from acgmake's reading of the score, not LibreSVIP's MusicXML import, which keeps
    only the first part of a note tied over a bar line."""
    from libresvip.model.base import Note, Project, SingingTrack, SongTempo, TimeSignature

    numerator, _, denominator = score.time_signature.partition("/")
    notes = [
        Note(start_pos=start, length=length, key_number=midi, lyric=lyric)
        for lyric, midi, start, length in score_notes(score)
    ]
    return Project(
        song_tempo_list=[SongTempo(position=0, bpm=score.tempo_bpm)],
        time_signature_list=[
            TimeSignature(bar_index=0, numerator=int(numerator), denominator=int(denominator))
        ],
        track_list=[SingingTrack(title=score.title or "Vocal", note_list=notes)],
    )


def project_notes(project) -> list[tuple[str, int, int, int]]:
    """The same four values of every note of a LibreSVIP project's singing tracks."""
    notes = []
    for track in project.track_list:
        for note in getattr(track, "note_list", []):
            notes.append((note.lyric, note.key_number, note.start_pos, note.length))
    return sorted(notes, key=lambda note: note[2])


def export(ctx: StageContext) -> None:
    from libresvip.extension.manager import get_svs_plugin_by_value

    from acgmake.music.musicxml import read_score

    score_path = ctx.input("score")
    score = read_score(score_path)  # one clear line for a bad score
    expected = score_notes(score)
    if not expected:
        raise UserError(f"{score_path.name} has no notes with lyrics to export")
    project = score_project(score)
    for index, (kind, (filename, _)) in enumerate(FORMATS.items()):
        ctx.progress(index, len(FORMATS), filename)
        converter = get_svs_plugin_by_value(kind)
        path = ctx.output(kind)
        converter.dump(path, project, {})
        written = project_notes(converter.load(path, {}))
        if written != expected:
            pairs = zip(expected + [None], written + [None], strict=False)  # to the shorter's end
            wrong = next((a, b) for a, b in pairs if a != b)
            raise UserError(
                f"the {filename} LibreSVIP wrote does not hold the score's notes (first "
                f"difference: {wrong[0]} in the score, {wrong[1]} in the file); please report it"
            )
    ctx.log(f"{len(expected)} notes in {', '.join(name for name, _ in FORMATS.values())}")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "svs_export",
            needs=("score",),
            makes=tuple(FORMATS),
            run=export,
            version="1",
            optional=True,  # LibreSVIP takes 1.5 s to load: in `acgmake song` with --also
            help="Write the score for singing editors: score.ustx (OpenUtau), score.ust "
            "(UTAU), score.svp (Synthesizer V), score.vsqx (VOCALOID 4), each read back and "
            "checked. Example: acgmake song lyrics.txt --also svs_export",
        )
    )
