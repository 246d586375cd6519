"""The ``sing`` stage: Sinsy sings the score; phoneme labels and per-mora timing come with it."""

from __future__ import annotations

from acgmake import Artifact, Param, Stage, hookimpl

#: What vocals.wav holds, whatever rate the voice sings at.
VOCALS_SAMPLE_RATE = 48000


@hookimpl
def register_artifacts(register):
    register(Artifact("vocals", "vocals.wav", "the sung vocals (WAV, mono, 48 kHz, 16-bit)"))
    register(Artifact("phonemes", "phonemes.lab", "phonemes with their times (HTK label file)"))
    register(
        Artifact("timing", "timing.json", "when each mora is sung, by line, and the beat grid")
    )


def sing(ctx) -> None:
    import soundfile

    from acgmake.errors import UserError
    from acgmake.music.musicxml import read_score
    from acgmake.text.kana import is_singable
    from acgmake.voice import sinsy
    from acgmake.voice.align import align_phonemes, build_timing
    from acgmake.voice.labels import write_lab

    score_path = ctx.input("score")
    score = read_score(score_path)  # clear errors for a bad score before Sinsy sees it
    voice = sinsy.check_voice(ctx.params["voice"] or None)
    lyrics = [note.lyric for note in score.sung_notes() if note.lyric]
    unreadable = [lyric for lyric in lyrics if not is_singable(lyric)]
    if lyrics and len(unreadable) == len(lyrics):
        raise UserError(
            f"the lyrics of {score_path.name} are not kana (e.g. {unreadable[0]!r}); the "
            "Japanese voice sings hiragana or katakana — write them in kana"
        )
    if unreadable:
        ctx.log(f"{len(unreadable)} lyrics are not kana (e.g. {unreadable[0]!r}); not sung")
    unsung = len(score.sung_notes()) - len(lyrics)
    if unsung:
        ctx.log(
            f"{unsung} notes have no lyric and stay silent; to hold a vowel over a note, "
            "give it the lyric ー"
        )
    last = score.notes[-1]
    song_s = (last.offset + last.quarter_length) * 60.0 / score.tempo_bpm
    # Sinsy sings ~20x faster than real time; a hang is stopped well before a user gives up.
    timeout_s = 60.0 + 2.0 * song_s
    ctx.progress(0, 1, "Sinsy is singing")
    singing = sinsy.sing(score_path, voice_path=voice, timeout_s=timeout_s)
    for message in singing.messages:
        ctx.log(f"Sinsy: {message}")
    samples, sample_rate = singing.samples, singing.sample_rate
    if sample_rate != VOCALS_SAMPLE_RATE:
        samples = _resample(samples, sample_rate, VOCALS_SAMPLE_RATE)
    phonemes = align_phonemes(singing.phonemes, samples, VOCALS_SAMPLE_RATE)
    timing = build_timing(score, singing.phonemes, len(samples) / VOCALS_SAMPLE_RATE)

    soundfile.write(
        ctx.output("vocals"), samples, VOCALS_SAMPLE_RATE, subtype="PCM_16", format="WAV"
    )
    write_lab(ctx.output("phonemes"), phonemes)
    timing.write(ctx.output("timing"))
    ctx.progress(1, 1, "sung")

    if voice == sinsy.sinsy_files().voice:
        ctx.use_asset(
            voice,
            name=f"voice {sinsy.BUNDLED_VOICE}",
            license=sinsy.VOICE_LICENSE,
            credit=sinsy.VOICE_CREDIT,
        )
    else:
        ctx.use_asset(voice, name=f"voice {voice.name}", license="as its author states")
        ctx.log(f"credit the voice {voice.name} as its licence asks when you share the song")
    ctx.use_asset(
        sinsy.sinsy_files().module,
        name="Sinsy",
        license=sinsy.SINSY_LICENSE,
        credit=sinsy.SINSY_CREDIT,
    )


def _resample(samples, rate: int, target: int):
    import math

    from scipy.signal import resample_poly

    divisor = math.gcd(rate, target)
    resampled = resample_poly(samples, target // divisor, rate // divisor)
    return resampled.clip(-1.0, 1.0).astype("float32")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "sing",
            needs=("score",),
            makes=("vocals", "phonemes", "timing"),
            run=sing,
            version="1",
            params=(
                Param(
                    "voice",
                    "",
                    "path of an HTS singing voice (.htsvoice); empty = the bundled "
                    "nitech_jp_song070_f001 (CC BY 3.0)",
                ),
            ),
            help="Sing the score with Sinsy: writes the vocals (WAV), the phonemes with "
            "their times and when each mora is sung. Example: acgmake sing score.musicxml",
        )
    )
