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
            "the processed vocals as mixed in song.wav, limiter included: with the backing "
            "stem it adds up to song.wav (stem: WAV, stereo, 48 kHz, float)",
        )
    )
    register(
        Artifact(
            "backing_stem",
            "backing_stem.wav",
            "the backing as mixed in song.wav, limiter included (stem: WAV, stereo, 48 kHz, float)",
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

    from acgmake.audio.mixing import balance_and_master, vocal_chain
    from acgmake.audio.resample import resample
    from acgmake.errors import UserError

    def read(kind: str, *, mono: bool = False) -> np.ndarray:
        """The file as float32 at the mix's rate: (samples, channels), or (samples,) when
        ``mono`` (the channels averaged)."""
        path = ctx.input(kind)
        try:
            samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError) as error:
            raise UserError(f"cannot read the {kind} {path}: {error}") from None
        if len(samples) == 0:
            raise UserError(f"the {kind} {path.name} is empty")
        if mono:
            samples = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1)
        return resample(samples, rate, MIX_SAMPLE_RATE, dtype=np.float32)

    params = ctx.params
    for name, low, high in (("loudness", -40.0, -5.0), ("true_peak", -12.0, 0.0)):
        if not (low <= params[name] <= high) or not math.isfinite(params[name]):
            raise UserError(f"--{name.replace('_', '-')} must be from {low:g} to {high:g}")
    ctx.progress(0, 1, "mixing")
    # One whole-song array at a time beyond what the mix keeps: the raw vocals are let go
    # once processed, before the backing is read; the song and stems are written in blocks.
    voice = vocal_chain(read("vocals", mono=True), MIX_SAMPLE_RATE, reverb=params["reverb"])
    try:
        result = balance_and_master(
            voice,
            read("backing"),
            MIX_SAMPLE_RATE,
            vocal_level_db=params["vocal_level"],
            loudness_lufs=params["loudness"],
            true_peak_dbtp=params["true_peak"],
        )
    except ValueError:
        raise UserError(
            "the vocals and the backing are both silent; nothing to mix — sing and "
            "accompany the score again"
        ) from None
    rate = MIX_SAMPLE_RATE
    # The stems are 32-bit float WAV (headroom above 0 dBFS for a DAW), written as scipy's
    # wavfile writes them: without libsndfile's PEAK chunk, whose time stamp made two runs of
    # the same song give different files.
    with (
        soundfile.SoundFile(
            ctx.output("song"), "w", rate, 2, subtype="PCM_24", format="WAV"
        ) as song,
        _FloatWav(ctx.output("vocals_stem"), rate, 2, result.length) as vocals,
        _FloatWav(ctx.output("backing_stem"), rate, result.band.shape[1], result.length) as backing,
    ):
        for song_block, vocals_block, backing_block in result.blocks():
            song.write(song_block)
            vocals.write(vocals_block)
            backing.write(backing_block)
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


class _FloatWav:
    """A 32-bit float WAV written a block at a time, byte for byte as
    ``scipy.io.wavfile.write`` writes the whole array: RIFF, fmt (IEEE float, with cbSize),
    fact, data; no PEAK chunk."""

    def __init__(self, path, rate: int, channels: int, frames: int) -> None:
        import struct

        self._handle = open(path, "wb")
        data_bytes = frames * channels * 4
        fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * 4 * channels, 4 * channels, 32)
        fmt += b"\x00\x00"
        header = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        header += b"fact" + struct.pack("<II", 4, frames)
        header += b"data" + struct.pack("<I", min(data_bytes, 0xFFFFFFFF))
        if len(header) + 4 + data_bytes > 0xFFFFFFFF:
            self._handle.close()
            raise ValueError("a stem over 4 GB does not fit a WAV file")
        self._handle.write(b"RIFF" + struct.pack("<I", len(header) + data_bytes) + header)

    def write(self, block) -> None:
        import numpy as np

        self._handle.write(np.ascontiguousarray(block, dtype="<f4").tobytes())

    def __enter__(self) -> _FloatWav:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._handle.close()


@hookimpl
def register_stages(register):
    register(
        Stage(
            "mix",
            cost_s=0.5,
            needs=("vocals", "backing"),
            makes=("song", "vocals_stem", "backing_stem", "mix_report"),
            run=mix,
            version="2",  # 2: the stems through the limiter too: they add up to song.wav
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
