"""The ``accompany`` stage: a backing band (bass, piano, pad, drums) for the score, as audio."""

from __future__ import annotations

import click

from acgmake import Artifact, Param, Stage, hookimpl
from acgmake.music.accompaniment import STYLES

#: What backing.wav holds.
BACKING_SAMPLE_RATE = 48000
#: The backing is written with its loudest sample here, leaving the mix room to work.
BACKING_PEAK_DBFS = -1.0


@hookimpl
def register_artifacts(register):
    register(
        Artifact(
            "backing",
            "backing.wav",
            "the backing band (WAV, stereo, 48 kHz, 24-bit), in time with vocals.wav",
        )
    )
    register(
        Artifact(
            "backing_midi",
            "backing.mid",
            "the backing band as a MIDI file (one track per part) for a DAW",
        )
    )


def accompany(ctx) -> None:
    import numpy as np
    import soundfile

    from acgmake.audio.soundfont import (
        DEFAULT_SOUNDFONT_CREDIT,
        DEFAULT_SOUNDFONT_LICENSE,
        SoundFont,
        default_soundfont,
        render_midi,
    )
    from acgmake.errors import UserError
    from acgmake.music.accompaniment import arrange, read_harmony
    from acgmake.pipeline import user_path
    from acgmake.voice.labels import Timing

    harmony = read_harmony(ctx.input("score"))
    if not harmony.chords_from_score:
        ctx.log("the score has no chord symbols; chords were chosen from its melody")
    start_s, shift = 0.0, 0
    timing_path = ctx.input("timing")
    if timing_path is not None:
        # Play in vocals.wav's time and key: after any silence Sinsy put first, and
        # transposed as the singing was.
        timing = Timing.read(timing_path)
        start_s, shift = timing.first_beat_s, timing.pitch_shift
    parts = tuple(p.strip() for p in ctx.params["parts"].split(",") if p.strip())
    midi = arrange(
        harmony.transposed(shift),
        seed=ctx.seed,
        style=ctx.params["band"],
        parts=parts,
        start_s=start_s,
    )
    midi.write(str(ctx.output("backing_midi")))

    chosen = ctx.params["soundfont"]
    path = user_path(chosen) if chosen else default_soundfont()
    if not path.is_file():
        raise UserError(f"soundfont {path} does not exist; give the path of a .sf2 file")
    ctx.progress(0, 1, "the band is playing")
    audio = render_midi(
        midi,
        SoundFont(path),
        sample_rate=BACKING_SAMPLE_RATE,
        # As many voices at once as this stage has cores (more as stages beside it end).
        workers=lambda: ctx.cores,
        progress=lambda share: ctx.progress(share, 1, "the band is playing"),
    )
    # The loudest sample, a block at a time (no whole-song copy for np.abs).
    block = 1 << 16
    peak = max(
        (float(np.abs(audio[i : i + block]).max()) for i in range(0, len(audio), block)),
        default=0.0,
    )
    if peak <= 0:
        raise UserError(
            f"the soundfont {path.name} played nothing for the backing; give a General MIDI "
            "soundfont (with bass, piano, pad and a drum kit in bank 128)"
        )
    audio *= np.float32(10 ** (BACKING_PEAK_DBFS / 20) / peak)
    soundfile.write(
        ctx.output("backing"), audio, BACKING_SAMPLE_RATE, subtype="PCM_24", format="WAV"
    )
    ctx.progress(1, 1, "played")
    if not chosen:
        ctx.use_asset(
            path,
            name="soundfont TimGM6mb",
            license=DEFAULT_SOUNDFONT_LICENSE,
            credit=DEFAULT_SOUNDFONT_CREDIT,
        )
    else:
        ctx.use_asset(path, name=f"soundfont {path.name}", license="as its author states")
        ctx.log(f"credit the soundfont {path.name} as its licence asks when you share the song")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "accompany",
            cost_s=1.2,
            needs=("score",),
            makes=("backing", "backing_midi"),
            uses=("timing",),
            run=accompany,
            # 2: the band plays with a feel, a few ms off the grid; 3: verse, chorus and lift
            # grooves by the score's sections, fills into each, the upbeat style, a two-bar
            # intro where there is room, an outro bar (IV, V) before the final chord
            version="3",
            params=(
                Param(
                    "soundfont",
                    "",
                    "path of a General MIDI soundfont (.sf2); empty = TimGM6mb (GPL-2.0, "
                    "shipped with pretty_midi)",
                ),
                Param(
                    "band",
                    "auto",
                    "how the band plays: pop (8-beat), ballad (half-time, arpeggios), upbeat "
                    "(four on the floor), or auto (ballad below 90 bpm, upbeat from 140); the "
                    "chorus plays bigger than the verse where the score marks its sections",
                    click.Choice(list(STYLES)),
                ),
                Param(
                    "parts",
                    "bass,piano,pad,drums",
                    "which parts play, comma-separated, from: bass, piano, pad, drums",
                ),
            ),
            help="Play a backing band (bass, piano, pad, drums) from the score's chords and "
            "tempo: writes backing.wav and backing.mid. Example: acgmake accompany "
            "score.musicxml --soundfont MyGM.sf2",
        )
    )
