"""The ``mix`` stage: the vocals, processed, over the backing, at streaming loudness."""

from __future__ import annotations

import click

from acgmake import Artifact, Param, Stage, hookimpl

#: What song.wav and the stems hold.
MIX_SAMPLE_RATE = 48000


@hookimpl
def register_artifacts(register):
    register(
        Artifact(
            "song",
            "song.wav",
            "the finished song: vocals over the backing, mastered (WAV, stereo, 48 kHz, 24-bit)",
        )
    )
    register(
        Artifact(
            "vocals_stem",
            "vocals_stem.wav",
            "the processed vocals as mixed in song.wav (stem: WAV, stereo, 48 kHz, float)",
        )
    )
    register(
        Artifact(
            "backing_stem",
            "backing_stem.wav",
            "the backing as mixed in song.wav (stem: WAV, stereo, 48 kHz, float)",
        )
    )
    register(
        Artifact(
            "mix_report",
            "mix.json",
            "what the mix measured: loudness (LUFS), true peak (dBTP), levels and gains",
        )
    )


def mix(ctx) -> None:
    import json
    import math

    import numpy as np
    import soundfile

    from acgmake.audio.mixing import mix_song
    from acgmake.audio.resample import resample
    from acgmake.errors import UserError

    def read(kind: str):
        path = ctx.input(kind)
        try:
            samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError) as error:
            raise UserError(f"cannot read the {kind} {path}: {error}") from None
        if len(samples) == 0:
            raise UserError(f"the {kind} {path.name} is empty")
        return resample(samples, rate, MIX_SAMPLE_RATE)

    vocals, backing = read("vocals"), read("backing")
    params = ctx.params
    for name, low, high in (("loudness", -40.0, -5.0), ("true_peak", -12.0, 0.0)):
        if not (low <= params[name] <= high) or not math.isfinite(params[name]):
            raise UserError(f"--{name.replace('_', '-')} must be from {low:g} to {high:g}")
    ctx.progress(0, 1, "mixing")
    try:
        result = mix_song(
            vocals.mean(axis=1),
            backing,
            MIX_SAMPLE_RATE,
            vocal_level_db=params["vocal_level"],
            reverb=params["reverb"],
            loudness_lufs=params["loudness"],
            true_peak_dbtp=params["true_peak"],
        )
    except ValueError:
        raise UserError(
            "the vocals and the backing are both silent; nothing to mix — sing and "
            "accompany the score again"
        ) from None
    rate = MIX_SAMPLE_RATE
    soundfile.write(ctx.output("song"), result.song, rate, subtype="PCM_24", format="WAV")
    # 32-bit float WAV (headroom above 0 dBFS for a DAW), written without libsndfile's PEAK
    # chunk, whose time stamp made two runs of the same song give different files.
    from scipy.io import wavfile

    wavfile.write(ctx.output("vocals_stem"), rate, np.asarray(result.vocals, np.float32))
    wavfile.write(ctx.output("backing_stem"), rate, np.asarray(result.backing, np.float32))
    report = {
        **result.report(),
        "target_lufs": params["loudness"],
        "ceiling_dbtp": params["true_peak"],
        "vocal_level_db": params["vocal_level"],
    }
    ctx.output("mix_report").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if result.mastered.limiter_reduction_db > 6.0:
        ctx.log(
            f"the limiter turned peaks down by up to {result.mastered.limiter_reduction_db:.1f} "
            "dB to reach the loudness; a lower --loudness keeps more punch"
        )
    ctx.progress(1, 1, f"{report['loudness_lufs']} LUFS, {report['true_peak_dbtp']} dBTP")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "mix",
            needs=("vocals", "backing"),
            makes=("song", "vocals_stem", "backing_stem", "mix_report"),
            run=mix,
            version="1",
            params=(
                Param(
                    "loudness",
                    -14.0,
                    "integrated loudness of the song in LUFS (streaming services play at -14)",
                    click.FloatRange(-40.0, -5.0),
                ),
                Param(
                    "true_peak",
                    -1.0,
                    "ceiling for the true (4x oversampled) peak, in dBTP",
                    click.FloatRange(-12.0, 0.0),
                ),
                Param(
                    "vocal_level",
                    2.0,
                    "how far the vocals sit above the backing, in LU (dB of loudness)",
                    click.FloatRange(-20.0, 20.0),
                ),
                Param(
                    "reverb",
                    0.2,
                    "reverb on the vocals, 0 (dry) to 1",
                    click.FloatRange(0.0, 1.0),
                ),
            ),
            help="Mix the vocals over the backing: EQ, compression and reverb on the voice, "
            "balanced by loudness, mastered to -14 LUFS with true peaks under -1 dBTP. Writes "
            "song.wav, the two stems and mix.json. Example: acgmake mix vocals.wav --backing "
            "backing.wav",
        )
    )
