"""The ``sing`` stage: Sinsy sings the score; phoneme labels and per-mora timing come with it."""

from __future__ import annotations

import click

from acgmake import Artifact, Param, Stage, hookimpl
from acgmake.voice.labels import MAX_TIMING_BYTES

#: What vocals.wav holds, whatever rate the voice sings at.
VOCALS_SAMPLE_RATE = 48000


@hookimpl
def register_artifacts(register):
    register(Artifact("vocals", "vocals.wav", "the sung vocals (WAV, mono, 48 kHz, 16-bit)"))
    register(Artifact("phonemes", "phonemes.lab", "phonemes with their times (HTK label file)"))
    register(
        Artifact(
            "phoneme_labels",
            "phonemes.txt",
            "phonemes with their times in seconds (Audacity label track)",
        )
    )
    register(
        Artifact(
            "timing",
            "timing.json",
            "when each mora is sung, by line, and the beat grid",
            max_bytes=MAX_TIMING_BYTES,
        )
    )


def sing(ctx) -> None:
    import numpy as np
    import soundfile

    from acgmake.audio.resample import resample
    from acgmake.errors import UserError
    from acgmake.music.musicxml import read_score
    from acgmake.text.kana import is_singable
    from acgmake.voice import sinsy
    from acgmake.voice.align import _ANALYSIS_RATE as ALIGNMENT_RATE
    from acgmake.voice.align import align_phonemes, build_timing
    from acgmake.voice.expression import apply_dynamics
    from acgmake.voice.labels import write_audacity_labels, write_lab
    from acgmake.voice.pitch_correction import correct_pitch
    from acgmake.voice.styles import FLAT, preset_for

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
    options = sinsy.SingingOptions(
        pitch_shift=int(ctx.params["pitch_shift"]),
        alpha=ctx.params["alpha"],
        volume_db=float(ctx.params["volume"]),
    )
    sung = [n.midi + options.pitch_shift for n in score.sung_notes() if n.midi is not None]
    bundled = voice == sinsy.sinsy_files().voice
    outside = sung and (min(sung) < _SUNG_RANGE[0] or max(sung) > _SUNG_RANGE[1])
    if options.pitch_shift and bundled and outside:
        ctx.log(
            f"shifted by {options.pitch_shift:+d} semitones the notes span MIDI "
            f"{min(sung)}-{max(sung)}; the bundled voice sings MIDI {_SUNG_RANGE[0]}-"
            f"{_SUNG_RANGE[1]} (E4-C5) in tune and drifts outside it"
        )
    ctx.progress(0, 1, "Sinsy is singing")
    if ctx.params["sinsy_backend"] == "online":
        samples, sample_rate, labels = _sing_online(ctx, score_path, voice, options, timeout_s)
    else:
        singing = sinsy.sing(score_path, voice_path=voice, timeout_s=timeout_s, options=options)
        for message in singing.messages:
            ctx.log(f"Sinsy: {message}")
        samples, sample_rate, labels = singing.samples, singing.sample_rate, singing.phonemes
        del singing  # the song is held once: each step below lets go of what it replaces
    if sample_rate != VOCALS_SAMPLE_RATE:
        samples = resample(samples, sample_rate, VOCALS_SAMPLE_RATE, dtype="float32")
        np.clip(samples, -1, 1, out=samples)
    timing = build_timing(score, labels, len(samples) / VOCALS_SAMPLE_RATE)
    timing.pitch_shift = options.pitch_shift
    for line in timing.lines:  # the pitches as sung
        for mora in line.morae:
            mora.midi += options.pitch_shift
    strength = float(ctx.params["pitch_correction"])
    style = preset_for(ctx.params["expression_style"], score.tempo_bpm)
    if not ctx.params["expression"]:
        style = FLAT
    style = style.with_options(ctx.params["vibrato"], ctx.params["portamento"])
    vibrato = style.vibrato_cents
    if strength > 0 or vibrato > 0 or style != FLAT:
        ctx.progress(0.5, 1, "correcting the pitch")
        corrected = correct_pitch(
            samples,
            VOCALS_SAMPLE_RATE,
            timing,
            strength=strength,
            vibrato=vibrato,
            expression=style,
            seed=ctx.seed,
            # As many phrases at once as this stage has cores (more as stages beside it end).
            workers=lambda: ctx.cores,
            progress=lambda share: ctx.progress(0.5 + 0.4 * share, 1, "correcting the pitch"),
        )
        samples = corrected.samples
        moved = [abs(c) for c in corrected.shifts_cents if c]
        if moved:
            ctx.log(
                f"pitch corrected: {len(moved)} notes moved onto the score, median "
                f"{sorted(moved)[len(moved) // 2]:.0f} cents, largest {max(moved):.0f} cents"
            )
    if style.accent_db or style.soft_start_db or style.ease_off_db:
        samples = np.asarray(samples, dtype=np.float32)
        apply_dynamics(samples, VOCALS_SAMPLE_RATE, timing, style)
    if ctx.params["breaths"] and sung:
        _breathe(ctx, samples, timing, voice, sorted(sung)[len(sung) // 2])
    # The alignment analyses the vocals at 16 kHz: they are resampled here a block at a time
    # (the same samples it would make of them whole, without a float64 copy of the song).
    analysis_rate = min(VOCALS_SAMPLE_RATE, ALIGNMENT_RATE)
    phonemes = align_phonemes(
        labels, resample(samples, VOCALS_SAMPLE_RATE, analysis_rate), analysis_rate
    )
    timing.credits = _credits(ctx.params["sinsy_backend"], voice, bundled)

    soundfile.write(
        ctx.output("vocals"), samples, VOCALS_SAMPLE_RATE, subtype="PCM_16", format="WAV"
    )
    write_lab(ctx.output("phonemes"), phonemes)
    write_audacity_labels(ctx.output("phoneme_labels"), phonemes)
    timing.write(ctx.output("timing"))
    ctx.progress(1, 1, "sung")

    if ctx.params["sinsy_backend"] == "online":
        from acgmake.voice.sinsy_online import ONLINE_CREDIT

        ctx.log("sung by Sinsy's online service: its terms of use apply to the singing")
        ctx.use_asset(
            sinsy.sinsy_files().module,
            name="Sinsy online",
            license="service terms",
            credit=ONLINE_CREDIT,
        )
    elif bundled:
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


def _breathe(ctx, samples, timing, voice, midi: int) -> None:
    """Breaths in ``samples`` (in place) before the phrases that follow a rest, in the voice's
    own breath (acgmake.voice.breath); a log line when the voice sings none."""
    from acgmake.errors import UserError
    from acgmake.voice.breath import add_breaths, voice_breath

    ctx.progress(0.9, 1, "breathing")
    try:
        breath = voice_breath(voice, midi, VOCALS_SAMPLE_RATE)
    except UserError as error:
        ctx.log(f"no breaths added: Sinsy could not sing the voice's breath ({error})")
        return
    if breath is None:
        ctx.log(f"no breaths added: the voice {voice.name} sings no breath")
        return
    count = add_breaths(samples, timing, breath, level_db=float(ctx.params["breath_level"]))
    ctx.log(f"{count} breaths before phrases ({len(breath.samples) / VOCALS_SAMPLE_RATE:.2f} s)")


def _credits(backend: str, voice, bundled: bool) -> list[str]:
    """The lines the clip's credits show for the singing: the voice (its licence asks for
    it; a user's voice is named, its author to be credited by the user) and Sinsy."""
    from acgmake.voice import sinsy

    if backend == "online":
        from acgmake.voice.sinsy_online import ONLINE_CREDIT

        return [ONLINE_CREDIT]
    voice_credit = sinsy.VOICE_CREDIT if bundled else f"Singing voice: {voice.stem}"
    return [voice_credit, sinsy.SINSY_CREDIT]


#: MIDI notes the bundled voice sings in tune (see acgmake.music.melody.VOICE_RANGE).
_SUNG_RANGE = (64, 72)


def _sing_online(ctx, score_path, voice, options, timeout_s: float):
    """(samples, sample_rate, labels) from Sinsy's online service; labels from local Sinsy."""
    import numpy as np

    from acgmake.music.musicxml import sinsy_xml
    from acgmake.voice import sinsy
    from acgmake.voice.sinsy_online import service_url, sing_online

    ctx.log(f"sending the score to Sinsy's online service at {service_url()}")
    xml = sinsy.transpose_xml(sinsy_xml(score_path), options.pitch_shift)
    alpha = options.alpha if options.alpha is not None else 0.55
    samples, rate = sing_online(xml, alpha=alpha, timeout_s=timeout_s)
    if options.volume_db:
        samples = np.clip(samples * 10 ** (options.volume_db / 20), -1.0, 1.0)
    # Sinsy's labels are the score's note times, the same for any voice: ask the local one.
    labels = sinsy.phoneme_labels(score_path, voice, timeout_s=timeout_s)
    return samples.astype("float32"), rate, labels


def _by_style(field: str) -> str:
    """An option's default as each singing style sets it, for its help."""
    from acgmake.voice.styles import PRESETS

    values = ", ".join(f"{p.name} {getattr(p, field):g}" for p in PRESETS.values())
    return f"[default: the style's: {values}]"


@hookimpl
def register_stages(register):
    from acgmake.voice.styles import PRESETS

    register(
        Stage(
            "sing",
            cost_s=2.5,
            needs=("score",),
            makes=("vocals", "phonemes", "timing", "phoneme_labels"),
            run=sing,
            # 2: options, pitch correction, phonemes.txt; 3: sections, credits;
            # 4: notes outside 50-1100 Hz are left as sung; 5: pitch correction phrase by
            # phrase below 12 kHz, pauses kept as sung; 6: a song over 90 s sung by Sinsy in
            # sections of about 60 s (acgmake.voice.sinsy_worker.sections); 7: --vibrato;
            # 8: expression presets, portamento, overshoot, preparation, phrase-end falls;
            # 9: breaths before phrases, in the voice's own breath; 10: dynamics; 11: accents
            # inside phrases only, glides at most a quarter of a note
            version="11",
            params=(
                Param(
                    "voice",
                    "",
                    "path of an HTS singing voice (.htsvoice); empty = the bundled "
                    "nitech_jp_song070_f001 (CC BY 3.0)",
                ),
                Param(
                    "pitch_shift",
                    0,
                    "semitones to sing the score higher (or lower, negative); the score is "
                    "transposed before Sinsy sings it, and the backing follows",
                    click.IntRange(-24, 24),
                ),
                Param(
                    "pitch_correction",
                    1.0,
                    "how far each note's pitch is moved onto the score after Sinsy sings "
                    "(WORLD vocoder), 0 (Sinsy as is) to 1 (onto the written note)",
                    click.FloatRange(0.0, 1.0),
                ),
                Param(
                    "expression",
                    True,
                    "sing with expression on top of the corrected notes: vibrato on long "
                    "notes, glides between notes, a little overshoot at leaps, a fall at "
                    "phrase ends, phrases starting soft and accents on the bar's first beat "
                    "(--no-expression: on the notes, flat and even)",
                ),
                Param(
                    "expression_style",
                    "auto",
                    "how much expression: ballad (wide, slow vibrato, slow glides), pop, "
                    "upbeat (tight); auto = from the score's tempo (under 96 bpm ballad, "
                    "from 140 upbeat)",
                    click.Choice(["auto", *PRESETS]),
                ),
                Param(
                    "vibrato",
                    None,
                    "vibrato depth in cents either side of the note, on notes of 0.45 s and "
                    "longer (from 0.2 s into the note, each note a little different); 0 = "
                    "none (Sinsy's own slight wobble) " + _by_style("vibrato_cents"),
                    click.FloatRange(0.0, 100.0),
                ),
                Param(
                    "portamento",
                    None,
                    "milliseconds a leap (or a held vowel on a new note) takes to glide to the "
                    "next note, half that for a step; 0 = as Sinsy sings it "
                    + _by_style("portamento_ms"),
                    click.FloatRange(0.0, 400.0),
                ),
                Param(
                    "breaths",
                    True,
                    "breathe in before each phrase that follows a rest of 0.6 s or more, with "
                    "the voice's own breath (Sinsy sings it)",
                ),
                Param(
                    "breath_level",
                    12.0,
                    "dB the breaths are raised over the level the voice breathes at (about 30 "
                    "dB under its singing, which the band covers); lower it for softer breaths",
                    click.FloatRange(-30.0, 24.0),
                ),
                Param(
                    "alpha",
                    None,
                    "Sinsy's timbre (all-pass constant, as the Sinsy website's 'gender'); "
                    "empty = the voice's own (0.55 for the bundled voice); keep within a few "
                    "hundredths of it: 0.05 away Sinsy's filter can already distort",
                    click.FloatRange(0.0, 0.9),
                ),
                Param(
                    "volume",
                    0.0,
                    "Sinsy's output gain in dB (the mix sets the song's loudness anyway)",
                    click.FloatRange(-30.0, 12.0),
                ),
                Param(
                    "sinsy_backend",
                    "local",
                    "local: Sinsy on this computer (offline); online: Sinsy's web service "
                    "(needs the internet; its terms apply)",
                    click.Choice(["local", "online"]),
                ),
            ),
            help="Sing the score with Sinsy (48 kHz): writes the vocals (WAV), the phonemes "
            "with their times (HTK .lab and Audacity .txt) and when each mora is sung "
            "(timing.json). Example: acgmake sing score.musicxml --pitch-shift 2",
        )
    )
