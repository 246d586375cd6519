"""A SoundFont 2 sample player in numpy: MIDI notes in, stereo audio out, offline.

It reads ``.sf2`` files (RIFF ``sfbk``: 16-bit samples, presets, instruments and their zones)
and plays each note the way the SoundFont 2.04 specification describes a voice: the sample at
the zone's pitch (root key, coarse/fine tune, scale tuning, the sample's own correction),
looped when the zone loops, shaped by the volume envelope (delay, attack, hold, decay,
sustain, release; key-number scaling of hold and decay), its attenuation, the velocity, its
pan, its low-pass filter (initial cutoff and resonance, swept by the modulation envelope, as
General MIDI banks use it to make a note bright at its attack and duller as it decays), and
exclusive classes (a closed hi-hat cuts an open one). Preset-level generators add to the
instrument's, as the specification says. Left out, because a backing track does not need
them: the modulation envelope's pitch sweep, the LFOs (vibrato, tremolo), modulators other
than velocity, chorus and reverb sends (the mix adds its own reverb), and compressed SF3 files.
Checked against tinysoundfont (a C player) on the same bars of piano, pad, bass and drums from
TimGM6mb: about 3 dB quieter overall (the specification's velocity curve where tinysoundfont's
is linear), and the same spectral balance within 2 dB in each of five bands up to 20 kHz.

Why not a binding: ``tinysoundfont`` declares a hard dependency on ``pyaudio`` (a PortAudio
binding with no Linux wheel, so a plain ``pip install`` fails without a C toolchain and
PortAudio's headers), and ``pyfluidsynth`` needs the system's libfluidsynth. This module needs
numpy and scipy only, so a backing track renders wherever acgmake installs.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from acgmake.errors import UserError

DEFAULT_SOUNDFONT_FILE = "TimGM6mb.sf2"
DEFAULT_SOUNDFONT_LICENSE = "GPL-2.0"
#: TimGM6mb's author and licence, as Debian's timgm6mb-soundfont package and MuseScore
#: (which shipped it in 0.9.6-1.3) give them.
DEFAULT_SOUNDFONT_CREDIT = (
    "Instrument sounds: TimGM6mb.sf2 by Tim Brechbill, with later work by David Bolton, "
    "licensed under the GNU GPL v2 (https://www.gnu.org/licenses/old-licenses/gpl-2.0.html), "
    "as shipped with pretty_midi"
)
#: The bank SoundFonts keep General MIDI percussion kits in.
PERCUSSION_BANK = 128
#: How far below full level a released voice is let go (the spec's release runs to -100 dB).
_SILENT_DB = 90.0
#: A cut voice (exclusive class, the end of the song) fades over this long, without a click.
_CUT_FADE_S = 0.005
#: At most this many samples of played voices are kept for playing again (64 MB).
VOICE_CACHE_SAMPLES = 16_000_000
#: The longest a release may ring, whatever the zone asks for.
_MAX_RELEASE_S = 4.0

# Generator numbers (SoundFont 2.04, section 8.1.3).
_START, _END, _LOOP_START, _LOOP_END, _START_COARSE = 0, 1, 2, 3, 4
_FILTER_FC, _FILTER_Q, _MOD_ENV_TO_FILTER, _END_COARSE, _PAN = 8, 9, 11, 12, 17
_MOD_DELAY, _MOD_ATTACK, _MOD_HOLD, _MOD_DECAY, _MOD_SUSTAIN, _MOD_RELEASE = 25, 26, 27, 28, 29, 30
_KEY_TO_MOD_HOLD, _KEY_TO_MOD_DECAY = 31, 32
_DELAY, _ATTACK, _HOLD, _DECAY, _SUSTAIN, _RELEASE = 33, 34, 35, 36, 37, 38
_KEY_TO_HOLD, _KEY_TO_DECAY = 39, 40
_INSTRUMENT, _KEY_RANGE, _VEL_RANGE, _LOOP_START_COARSE = 41, 43, 44, 45
_KEYNUM, _VELOCITY, _ATTENUATION, _LOOP_END_COARSE = 46, 47, 48, 50
_COARSE_TUNE, _FINE_TUNE, _SAMPLE_ID, _SAMPLE_MODES = 51, 52, 53, 54
_SCALE_TUNING, _EXCLUSIVE_CLASS, _ROOT_KEY = 56, 57, 58
_DEFAULTS = {
    _FILTER_FC: 13500,
    _MOD_DELAY: -12000,
    _MOD_ATTACK: -12000,
    _MOD_HOLD: -12000,
    _MOD_DECAY: -12000,
    _MOD_RELEASE: -12000,
    _DELAY: -12000,
    _ATTACK: -12000,
    _HOLD: -12000,
    _DECAY: -12000,
    _RELEASE: -12000,
    _KEYNUM: -1,
    _VELOCITY: -1,
    _SCALE_TUNING: 100,
    _ROOT_KEY: -1,
}
#: Generators that only mean something at the instrument level (a preset's are ignored).
_INSTRUMENT_ONLY = {
    _START,
    _END,
    _LOOP_START,
    _LOOP_END,
    _START_COARSE,
    _END_COARSE,
    _LOOP_START_COARSE,
    _LOOP_END_COARSE,
    _KEYNUM,
    _VELOCITY,
    _SAMPLE_MODES,
    _EXCLUSIVE_CLASS,
    _ROOT_KEY,
    _SAMPLE_ID,
}
_RANGES = (_KEY_RANGE, _VEL_RANGE)
_COMPRESSED = 0x10  # sampleType bit of SF3's Ogg Vorbis samples


@dataclass(frozen=True)
class _Sample:
    start: int
    end: int
    loop_start: int
    loop_end: int
    rate: int
    root_key: int
    correction_cents: int
    compressed: bool


@dataclass
class _Zone:
    generators: dict[int, int] = field(default_factory=dict)
    key_range: tuple[int, int] = (0, 127)
    vel_range: tuple[int, int] = (0, 127)

    def covers(self, key: int, velocity: int) -> bool:
        return (
            self.key_range[0] <= key <= self.key_range[1]
            and self.vel_range[0] <= velocity <= self.vel_range[1]
        )


@dataclass(frozen=True)
class Region:
    """One voice of a note: where its sample is and how it is played."""

    start: int  # sample frames in the file's sample data
    end: int
    loop_start: int
    loop_end: int
    loops: bool
    rate: int
    pitch_cents: float  # from the sample as recorded to the note played
    gain: float  # attenuation and velocity, as a factor
    pan: float  # -0.5 (left) .. 0.5 (right)
    delay_s: float
    attack_s: float
    hold_s: float
    decay_s: float  # time for a 100 dB fall, as the specification defines it
    sustain_db: float  # attenuation of the sustain level below the peak
    release_s: float  # time for a 100 dB fall
    cutoff_cents: float  # absolute cents (8.176 Hz * 2**(cents/1200))
    resonance_db: float
    filter_sweep_cents: float  # how far the modulation envelope opens the filter
    modulation: tuple[float, float, float, float, float, float]  # delay, attack, hold,
    # decay (s), sustain level (0..1), release (s) of the modulation envelope
    exclusive_class: int


@dataclass(frozen=True)
class SoundFontNote:
    """A note to play: a MIDI key on a program (or a drum kit) from ``start_s`` to ``end_s``."""

    start_s: float
    end_s: float
    key: int
    velocity: int
    program: int = 0
    is_drum: bool = False
    volume: float = 1.0  # the channel's volume (MIDI CC 7) as a factor
    pan: float = 0.0  # the channel's pan (MIDI CC 10), -0.5 .. 0.5


class SoundFont:
    """A parsed ``.sf2`` file; its sample data stays on disk (memory-mapped) until played."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = ""
        self._presets: dict[tuple[int, int], tuple[str, list[tuple[_Zone, list[_Zone]]]]] = {}
        self._samples: list[_Sample] = []
        self._pcm: np.ndarray = np.zeros(0, np.int16)
        #: Voices played already, at full loudness (see :meth:`play`).
        self._voices: dict[tuple, np.ndarray] = {}
        self._cached_samples = 0
        self._read()

    # -- reading --------------------------------------------------------------------------

    def _read(self) -> None:
        path = self.path
        try:
            with open(path, "rb") as handle:
                head = handle.read(12)
                size = path.stat().st_size
        except OSError as error:
            raise UserError(
                f"cannot read the soundfont {path}: {error.strerror or error}"
            ) from None
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise UserError(f"{path} is not a SoundFont 2 file (.sf2); give a .sf2 soundfont")
        chunks = self._chunks(path, size)
        if "smpl" not in chunks or "phdr" not in chunks:
            raise UserError(f"{path} is a damaged soundfont (no samples or presets)")
        offset, length = chunks["smpl"]
        self._pcm = np.memmap(path, dtype="<i2", mode="r", offset=offset, shape=(length // 2,))
        with open(path, "rb") as handle:

            def records(name: str, fmt: str) -> list[tuple]:
                if name not in chunks:
                    raise UserError(f"{path} is a damaged soundfont (no {name} chunk)")
                start, chunk_length = chunks[name]
                handle.seek(start)
                data = handle.read(chunk_length)
                step = struct.calcsize(fmt)
                return [
                    struct.unpack_from(fmt, data, i)
                    for i in range(0, len(data) // step * step, step)
                ]

            presets = records("phdr", "<20sHHHIII")
            preset_bags = records("pbag", "<HH")
            preset_gens = records("pgen", "<HH")
            instruments = records("inst", "<20sH")
            instrument_bags = records("ibag", "<HH")
            instrument_gens = records("igen", "<HH")
            sample_headers = records("shdr", "<20sIIIIIBbHH")
            if "INAM" in chunks:
                handle.seek(chunks["INAM"][0])
                self.name = handle.read(chunks["INAM"][1]).split(b"\0")[0].decode("latin-1")
        self._samples = [
            _Sample(start, end, loop_start, loop_end, rate or 44100, root, correction,
                    bool(kind & _COMPRESSED))
            for _, start, end, loop_start, loop_end, rate, root, correction, _, kind
            in sample_headers
        ]  # fmt: skip

        def zones(bags: list[tuple], gens: list[tuple], first: int, last: int) -> list[_Zone]:
            result = []
            for bag in range(first, last):
                zone = _Zone()
                for operator, amount in gens[bags[bag][0] : bags[bag + 1][0]]:
                    if operator in _RANGES:
                        low, high = amount & 0xFF, amount >> 8
                        if operator == _KEY_RANGE:
                            zone.key_range = (low, high)
                        else:
                            zone.vel_range = (low, high)
                    elif operator in (_INSTRUMENT, _SAMPLE_ID):
                        zone.generators[operator] = amount
                    else:
                        zone.generators[operator] = amount - 65536 if amount >= 32768 else amount
                result.append(zone)
            return result

        instrument_zones: list[tuple[_Zone | None, list[_Zone]]] = []
        for index in range(len(instruments) - 1):  # the last record is the terminal "EOI"
            found = zones(
                instrument_bags, instrument_gens, instruments[index][1], instruments[index + 1][1]
            )
            if found and _SAMPLE_ID not in found[0].generators:
                instrument_zones.append((found[0], found[1:]))
            else:
                instrument_zones.append((None, found))
        for index in range(len(presets) - 1):  # the last record is the terminal "EOP"
            name, program, bank, bag = presets[index][:4]
            found = zones(preset_bags, preset_gens, bag, presets[index + 1][3])
            global_zone = _Zone()
            if found and _INSTRUMENT not in found[0].generators:
                global_zone, found = found[0], found[1:]
            layers = []
            for zone in found:
                instrument = zone.generators.get(_INSTRUMENT)
                if instrument is None or instrument >= len(instrument_zones):
                    continue
                merged = _Zone(
                    {**global_zone.generators, **zone.generators},
                    zone.key_range if zone.key_range != (0, 127) else global_zone.key_range,
                    zone.vel_range if zone.vel_range != (0, 127) else global_zone.vel_range,
                )
                inst_global, inst_zones = instrument_zones[instrument]
                resolved = [
                    _Zone(
                        {**(inst_global.generators if inst_global else {}), **z.generators},
                        z.key_range
                        if z.key_range != (0, 127) or inst_global is None
                        else inst_global.key_range,
                        z.vel_range
                        if z.vel_range != (0, 127) or inst_global is None
                        else inst_global.vel_range,
                    )
                    for z in inst_zones
                ]
                layers.append((merged, resolved))
            label = name.split(b"\0")[0].decode("latin-1").strip()
            self._presets.setdefault((bank, program), (label, layers))

    @staticmethod
    def _chunks(path: Path, size: int) -> dict[str, tuple[int, int]]:
        """Offset and length of every leaf chunk (INFO's, sdta's, pdta's), by its id."""
        found: dict[str, tuple[int, int]] = {}
        with open(path, "rb") as handle:

            def walk(start: int, end: int) -> None:
                position = start
                while position + 8 <= end:
                    handle.seek(position)
                    ident, length = struct.unpack("<4sI", handle.read(8))
                    body = position + 8
                    if body + length > size:
                        raise UserError(f"{path} is a damaged or truncated soundfont")
                    name = ident.decode("latin-1")
                    if name in ("RIFF", "LIST"):
                        walk(body + 4, body + length)
                    else:
                        found.setdefault(name, (body, length))
                    position = body + length + (length & 1)

            walk(0, size)
        return found

    # -- looking up -----------------------------------------------------------------------

    def preset_name(self, bank: int, program: int) -> str | None:
        """The name of the preset at ``bank``/``program``, or None when there is none."""
        preset = self._presets.get((bank, program))
        return preset[0] if preset else None

    def has_preset(self, bank: int, program: int) -> bool:
        return (bank, program) in self._presets

    def regions(self, bank: int, program: int, key: int, velocity: int) -> list[Region]:
        """The voices that sound for ``key`` at ``velocity`` on a preset (none if it is silent).

        A missing preset falls back to program 0 of the bank (as General MIDI players do),
        then to the first preset there is.
        """
        preset = self._presets.get((bank, program)) or self._presets.get((bank, 0))
        if preset is None:
            preset = next(iter(self._presets.values()), ("", []))
        found = []
        for preset_zone, zones in preset[1]:
            if not preset_zone.covers(key, velocity):
                continue
            for zone in zones:
                if zone.covers(key, velocity):
                    region = self._region(preset_zone.generators, zone.generators, key, velocity)
                    if region is not None:
                        found.append(region)
        return found

    def _region(
        self, preset: dict[int, int], instrument: dict[int, int], key: int, velocity: int
    ) -> Region | None:
        sample_id = instrument.get(_SAMPLE_ID)
        if sample_id is None or sample_id >= len(self._samples):
            return None
        sample = self._samples[sample_id]
        if sample.compressed:
            raise UserError(
                f"{self.path.name} is an SF3 soundfont (compressed samples), which acgmake "
                "does not play; give an .sf2 (Polyphone converts SF3 to SF2)"
            )

        def value(generator: int) -> int:
            own = instrument.get(generator, _DEFAULTS.get(generator, 0))
            if generator in _INSTRUMENT_ONLY:
                return own
            return own + preset.get(generator, 0)

        key_played = value(_KEYNUM) if value(_KEYNUM) >= 0 else key
        velocity = value(_VELOCITY) if value(_VELOCITY) > 0 else velocity
        root = value(_ROOT_KEY)
        if root < 0:
            root = sample.root_key if sample.root_key <= 127 else 60
        pitch_cents = (
            (key_played - root) * value(_SCALE_TUNING)
            + value(_COARSE_TUNE) * 100
            + value(_FINE_TUNE)
            + sample.correction_cents
        )
        start = sample.start + value(_START) + 32768 * value(_START_COARSE)
        end = sample.end + value(_END) + 32768 * value(_END_COARSE)
        loop_start = sample.loop_start + value(_LOOP_START) + 32768 * value(_LOOP_START_COARSE)
        loop_end = sample.loop_end + value(_LOOP_END) + 32768 * value(_LOOP_END_COARSE)
        last = len(self._pcm) - 1
        start, end = min(max(start, 0), last), min(max(end, 0), last)
        if end - start < 2:
            return None
        loops = value(_SAMPLE_MODES) & 1 == 1 and start <= loop_start < loop_end - 1 <= end
        attenuation_db = min(max(value(_ATTENUATION), 0), 1440) / 10.0
        # The specification's default velocity modulator: a concave curve, close to 40*log10.
        gain = 10 ** (-attenuation_db / 20) * (max(velocity, 1) / 127.0) ** 2
        return Region(
            start=start,
            end=end,
            loop_start=loop_start,
            loop_end=loop_end,
            loops=loops,
            rate=sample.rate,
            pitch_cents=float(pitch_cents),
            gain=float(gain),
            pan=min(max(value(_PAN), -500), 500) / 1000.0,
            delay_s=_seconds(value(_DELAY)),
            attack_s=_seconds(value(_ATTACK)),
            hold_s=_seconds(value(_HOLD) + value(_KEY_TO_HOLD) * (60 - key_played)),
            decay_s=_seconds(value(_DECAY) + value(_KEY_TO_DECAY) * (60 - key_played)),
            sustain_db=min(max(value(_SUSTAIN), 0), 1440) / 10.0,
            release_s=min(_seconds(value(_RELEASE)), _MAX_RELEASE_S),
            cutoff_cents=float(min(max(value(_FILTER_FC), 1500), 13500)),
            resonance_db=min(max(value(_FILTER_Q), 0), 960) / 10.0,
            filter_sweep_cents=float(min(max(value(_MOD_ENV_TO_FILTER), -12000), 12000)),
            modulation=(
                _seconds(value(_MOD_DELAY)),
                _seconds(value(_MOD_ATTACK)),
                _seconds(value(_MOD_HOLD) + value(_KEY_TO_MOD_HOLD) * (60 - key_played)),
                _seconds(value(_MOD_DECAY) + value(_KEY_TO_MOD_DECAY) * (60 - key_played)),
                1.0 - min(max(value(_MOD_SUSTAIN), 0), 1000) / 1000.0,
                min(_seconds(value(_MOD_RELEASE)), _MAX_RELEASE_S),
            ),
            exclusive_class=value(_EXCLUSIVE_CLASS),
        )

    # -- playing --------------------------------------------------------------------------

    @staticmethod
    def voice_length(
        region: Region, held_s: float, sample_rate: int, cut_s: float | None = None
    ) -> int:
        """How many samples :meth:`play` gives for these arguments (0 or more)."""
        ratio = 2 ** (region.pitch_cents / 1200.0) * region.rate / sample_rate
        held = max(1, int(round(held_s * sample_rate)))
        ring = int(region.release_s * _SILENT_DB / 100.0 * sample_rate)
        length = held + ring
        if not region.loops:
            length = min(length, int((region.end - region.start - 1) / ratio))
        if cut_s is not None:
            length = min(length, int((cut_s + _CUT_FADE_S) * sample_rate))
        return max(0, length)

    def play(
        self, region: Region, held_s: float, sample_rate: int, cut_s: float | None = None
    ) -> np.ndarray:
        """One voice as float32 mono at ``sample_rate``: held ``held_s``, then released.

        ``cut_s`` stops the voice early (a fade of a few ms), e.g. when an exclusive class
        cuts it off. A band plays the same few voices over and over (a drum kit, a chord a
        bar), only louder or softer: each is played once, up to :data:`VOICE_CACHE_SAMPLES`
        samples of them kept, and scaled to each note's loudness (the same samples as playing
        it again; a backing plays about a quarter of its voices' samples).
        """
        held = max(1, int(round(held_s * sample_rate)))
        if cut_s is not None and int(cut_s * sample_rate) >= self.voice_length(
            region, held_s, sample_rate
        ):
            cut_s = None  # it has rung out by then: the cut changes nothing (and keys nothing)
        key = (replace(region, gain=1.0), held, sample_rate, cut_s)
        voice = self._voices.get(key)
        if voice is None:
            voice = self._play(key[0], held_s, sample_rate, cut_s)
            if self._cached_samples + len(voice) <= VOICE_CACHE_SAMPLES:
                self._voices[key] = voice
                self._cached_samples += len(voice)
        return voice * np.float32(region.gain)

    def _play(
        self, region: Region, held_s: float, sample_rate: int, cut_s: float | None
    ) -> np.ndarray:
        ratio = 2 ** (region.pitch_cents / 1200.0) * region.rate / sample_rate
        held = max(1, int(round(held_s * sample_rate)))
        length = self.voice_length(region, held_s, sample_rate, cut_s)
        if length <= 0:
            return np.zeros(0, np.float32)
        position = region.start + ratio * np.arange(length, dtype=np.float64)
        if region.loops:
            loop = region.loop_end - region.loop_start
            beyond = position >= region.loop_end
            position[beyond] = region.loop_start + np.mod(
                position[beyond] - region.loop_start, loop
            )
        index = position.astype(np.int64)
        fraction = (position - index).astype(np.float32)
        low, high = int(index.min()), int(index.max()) + 2
        pcm = np.asarray(self._pcm[low : min(high, len(self._pcm))], dtype=np.float32) / 32768.0
        local = index - low
        after = np.minimum(local + 1, len(pcm) - 1)
        voice = pcm[local] * (1 - fraction) + pcm[after] * fraction
        # The envelopes and the cutoff at the control rate (see _CONTROL_SAMPLES).
        times = np.arange(-(-length // _CONTROL_SAMPLES) + 1) * (_CONTROL_SAMPLES / sample_rate)
        voice *= _ramp(_envelope(region, held, times, sample_rate), length)
        if cut_s is not None and int(cut_s * sample_rate) < length:
            cut = int(cut_s * sample_rate)
            voice[cut:] *= np.linspace(1.0, 0.0, length - cut, dtype=np.float32)
        cutoff_cents = np.full(len(times), region.cutoff_cents)
        if region.filter_sweep_cents:
            cutoff_cents += region.filter_sweep_cents * _modulation(
                region, held, times, sample_rate
            )
        cutoff_hz = 8.176 * np.exp2(cutoff_cents / 1200.0)
        if cutoff_hz.min() < min(0.45 * sample_rate, 19000.0):
            voice = _low_pass(voice, cutoff_hz, region.resonance_db, sample_rate)
        return voice  # at full loudness: play() scales it


def _seconds(timecents: int) -> float:
    """Timecents as seconds; the specification's "instantaneous" -12000 and below are 0."""
    return 0.0 if timecents <= -12000 else float(2 ** (timecents / 1200.0))


def _db_down(db: np.ndarray) -> np.ndarray:
    """``10 ** (-db / 20)`` (an attenuation in dB as a factor), through numpy's vectorised
    exp2, several times faster than a power of 10 (equal to within a float64 rounding)."""
    return np.exp2(db * (-math.log2(10.0) / 20.0))


#: The volume and modulation envelopes and the filter's cutoff are worked out every this many
#: samples and drawn as straight lines in between, as FluidSynth does (its control rate is
#: 64 samples too): 1.3 ms at 48 kHz, far shorter than any envelope stage a soundfont asks
#: for. Per sample they were over half of the band's time.
_CONTROL_SAMPLES = 64
_CONTROL_STEPS = np.arange(_CONTROL_SAMPLES, dtype=np.float32) / _CONTROL_SAMPLES


def _ramp(values: np.ndarray, length: int) -> np.ndarray:
    """``values`` at samples 0, 64, 128, ... (one more than ``length`` needs) as ``length``
    samples, float32, a straight line between each two."""
    blocks = -(-length // _CONTROL_SAMPLES)
    points = np.asarray(values[: blocks + 1], dtype=np.float32)
    lines = points[:-1, None] + (points[1:] - points[:-1])[:, None] * _CONTROL_STEPS
    return lines.reshape(-1)[:length]


def _envelope(region: Region, held: int, t: np.ndarray, sample_rate: int) -> np.ndarray:
    """The volume envelope as an amplitude factor at the times ``t`` (seconds, rising) of a
    voice held ``held`` samples."""

    def holding(t: np.ndarray) -> np.ndarray:
        attack_from = region.delay_s
        decay_from = attack_from + region.attack_s + region.hold_s
        if region.decay_s > 0:
            fallen = np.minimum(
                region.sustain_db, np.maximum(t - decay_from, 0.0) * 100.0 / region.decay_s
            )
        else:
            fallen = np.where(t >= decay_from, region.sustain_db, 0.0)
        level = _db_down(fallen)
        if region.attack_s > 0:
            rising = (t - attack_from) / region.attack_s
            level = np.where(t < decay_from - region.hold_s, rising, level)
        return np.where(t < attack_from, 0.0, np.minimum(level, 1.0))

    level = holding(t)
    last = max(held - 1, 0) / sample_rate  # the last sample held
    released = t > last
    if released.any():
        at_release = float(holding(np.array([last]))[0]) if held > 0 else 0.0
        after = t[released] - last
        release_db = after * (100.0 / region.release_s) if region.release_s > 0 else np.inf * after
        level[released] = at_release * _db_down(np.minimum(release_db, 200.0))
    return level


def _modulation(region: Region, held: int, t: np.ndarray, sample_rate: int) -> np.ndarray:
    """The modulation envelope (0..1) at the times ``t`` (seconds, rising): linear attack,
    hold, decay to sustain, release once the ``held`` samples are over."""
    delay, attack, hold, decay, sustain, release = region.modulation

    def holding(t: np.ndarray) -> np.ndarray:
        decay_from = delay + attack + hold
        if decay > 0:
            level = np.maximum(sustain, 1.0 - np.maximum(t - decay_from, 0.0) / decay)
        else:
            level = np.where(t >= decay_from, sustain, 1.0)
        if attack > 0:
            level = np.where(t < delay + attack, (t - delay) / attack, level)
        return np.where(t < delay, 0.0, level)

    level = holding(t)
    last = (held - 1) / sample_rate
    released = t > last
    if held > 0 and released.any():
        at_release = float(holding(np.array([last]))[0])
        fall = (t[released] - last) / release if release > 0 else np.inf
        level[released] = np.maximum(at_release * (1.0 - fall), 0.0)
    return level


#: The swept filter is a blend of fixed filters this many cents apart (a half octave).
_FILTER_STEP_CENTS = 600.0


def _low_pass(
    voice: np.ndarray, cutoff_hz: np.ndarray, resonance_db: float, rate: int
) -> np.ndarray:
    """A second-order low-pass (RBJ biquad) whose cutoff follows ``cutoff_hz`` (at the
    control rate: every :data:`_CONTROL_SAMPLES` samples of ``voice``, one more than it needs).

    A swept cutoff is rendered as a blend of the voice through fixed filters a half octave
    apart, weighted by where the cutoff lies between them: a few filter runs per voice
    instead of new coefficients every few samples, and it sounds the same on an envelope.
    """
    from scipy.signal import lfilter

    q = max(0.5, 10 ** (resonance_db / 20.0) / math.sqrt(2.0))
    cents = 1200.0 * np.log2(np.minimum(cutoff_hz, 0.45 * rate) / 8.176)
    low, high = float(cents.min()), float(cents.max())
    count = 1 if high - low < 1.0 else int(math.ceil((high - low) / _FILTER_STEP_CENTS)) + 1
    anchors = np.linspace(low, high, count)

    def through(anchor_cents: float, until: int) -> np.ndarray:
        w0 = 2 * math.pi * 8.176 * 2 ** (anchor_cents / 1200.0) / rate
        alpha, cos = math.sin(w0) / (2 * q), math.cos(w0)
        b = np.array([(1 - cos) / 2, 1 - cos, (1 - cos) / 2]) / (1 + alpha)
        a = np.array([1 + alpha, -2 * cos, 1 - alpha]) / (1 + alpha)
        return lfilter(b, a, voice[:until]).astype(np.float32)

    if count == 1:
        return through(low, len(voice))
    position = (cents - low) / (anchors[1] - anchors[0])  # 0 .. count-1
    out = np.zeros_like(voice)
    for index, anchor in enumerate(anchors):
        weight = np.clip(1.0 - np.abs(position - index), 0.0, 1.0)
        used = np.flatnonzero(weight)
        if len(used):
            # A filter the cutoff has left for good (the bright start of a plucked note)
            # runs only as far as it is heard.
            until = min(len(voice), int(used[-1]) * _CONTROL_SAMPLES + 1)
            out[:until] += through(anchor, until) * _ramp(weight, len(voice))[:until]
    return out


def render_notes(
    notes: Iterable[SoundFontNote],
    soundfont: SoundFont,
    *,
    sample_rate: int = 48000,
    duration_s: float | None = None,
    workers: Callable[[], int] = lambda: 1,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """The notes played on ``soundfont``: float32 stereo, shape (samples, 2), unnormalised.

    The length is ``duration_s`` when given (voices still ringing then are faded out), else
    until the last voice has rung out. The voices are played ``workers()`` at a time and added
    to the song in order (the same song for any number); ``progress(share)`` hears how far.
    """
    from acgmake.threads import in_order

    notes = sorted(notes, key=lambda n: (n.start_s, n.key))
    voices: list[tuple[SoundFontNote, Region]] = []
    for note in notes:
        bank = PERCUSSION_BANK if note.is_drum else 0
        program = (
            0 if note.is_drum and not soundfont.has_preset(bank, note.program) else note.program
        )
        for region in soundfont.regions(bank, program, note.key, note.velocity):
            voices.append((note, region))
    # An exclusive class (open/closed hi-hat) lets one voice of its kit sound at a time.
    cuts: dict[int, float] = {}
    sounding: dict[tuple[bool, int, int], int] = {}
    for number, (note, region) in enumerate(voices):
        if region.exclusive_class:
            group = (note.is_drum, note.program, region.exclusive_class)
            earlier = sounding.get(group)
            if earlier is not None and voices[earlier][0].start_s < note.start_s:
                cuts[earlier] = note.start_s - voices[earlier][0].start_s
            sounding[group] = number
    # Each voice is played and added to the song at once, so memory holds the song and one
    # voice: the song's length is known first (from duration_s, or each voice's length).
    playing = []
    for number, (note, region) in enumerate(voices):
        cut = cuts.get(number)
        if duration_s is not None:
            until_end = duration_s - _CUT_FADE_S - note.start_s
            cut = until_end if cut is None else min(cut, until_end)
            if cut <= 0:
                continue
        playing.append((int(round(note.start_s * sample_rate)), note, region, cut))
    if duration_s is not None:
        end = int(round(duration_s * sample_rate))
    else:
        end = max(
            (
                start + soundfont.voice_length(region, note.end_s - note.start_s, sample_rate, cut)
                for start, note, region, cut in playing
            ),
            default=0,
        )
    out = np.zeros((end, 2), np.float32)

    def play(start: int, note: SoundFontNote, region: Region, cut: float | None) -> np.ndarray:
        voice = soundfont.play(region, note.end_s - note.start_s, sample_rate, cut)
        return voice[: max(0, end - start)]

    every = max(1, len(playing) // 20)

    def step(done: int) -> None:
        if progress is not None and (done % every == 0 or done == len(playing)):
            progress(done / len(playing))

    voices_played = in_order([lambda p=p: play(*p) for p in playing], workers, step)
    for (start, note, region, _), voice in zip(playing, voices_played, strict=True):
        pan = min(max(region.pan + note.pan, -0.5), 0.5)
        angle = (pan + 0.5) * math.pi / 2  # equal-power pan
        out[start : start + len(voice), 0] += voice * np.float32(math.cos(angle) * note.volume)
        out[start : start + len(voice), 1] += voice * np.float32(math.sin(angle) * note.volume)
    return out


def notes_from_midi(midi) -> list[SoundFontNote]:
    """The notes of a ``pretty_midi.PrettyMIDI``, with each instrument's first volume and pan."""
    found = []
    for instrument in midi.instruments:
        volume, pan = 1.0, 0.0
        for change in instrument.control_changes:
            if change.number == 7 and change.time <= 0.0:
                volume = (change.value / 127.0) ** 2  # MIDI volume is a squared-law fader
            elif change.number == 10 and change.time <= 0.0:
                pan = (change.value - 64) / 128.0
        for note in instrument.notes:
            found.append(
                SoundFontNote(
                    note.start,
                    note.end,
                    note.pitch,
                    note.velocity,
                    instrument.program,
                    instrument.is_drum,
                    volume,
                    pan,
                )
            )
    return found


def render_midi(
    midi,
    soundfont: SoundFont,
    *,
    sample_rate: int = 48000,
    tail_s: float = 2.0,
    workers: Callable[[], int] = lambda: 1,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """A ``pretty_midi.PrettyMIDI`` played on ``soundfont``: float32 stereo (samples, 2).

    It lasts until ``tail_s`` after the last note ends; what still rings then fades out.
    ``workers`` and ``progress`` are :func:`render_notes`'s.
    """
    notes = notes_from_midi(midi)
    last = max((note.end_s for note in notes), default=0.0)
    return render_notes(
        notes,
        soundfont,
        sample_rate=sample_rate,
        duration_s=last + tail_s,
        workers=workers,
        progress=progress,
    )


def default_soundfont() -> Path:
    """TimGM6mb.sf2, the General MIDI soundfont that ships inside ``pretty_midi``."""
    from importlib.resources import files

    try:
        path = Path(str(files("pretty_midi") / DEFAULT_SOUNDFONT_FILE))
    except ModuleNotFoundError:
        raise UserError(
            "pretty_midi is not installed, and the backing band's default soundfont comes "
            "with it; pip install pretty_midi, or give a soundfont with --soundfont PATH"
        ) from None
    if not path.is_file():
        raise UserError(
            f"the default soundfont {path} is missing; reinstall pretty_midi "
            "(pip install --force-reinstall pretty_midi) or give --soundfont PATH"
        )
    return path
