"""The child process that runs Sinsy for :mod:`acgmake.voice.sinsy` (not a public API).

``python -m acgmake.voice.sinsy_worker SCORE VOICE DICTIONARY OUT [--labels-only]
[--alpha A] [--volume DB]`` writes ``OUT/labels.lab`` (Sinsy's monophone labels with times)
and, unless ``--labels-only``, ``OUT/samples.npy`` (float32 in [-1, 1]) and ``OUT/info.json``
(the sample rate, and how many samples clipped). The exit code says what failed (see the
``EXIT_*`` constants); Sinsy's own messages go to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from acgmake.voice.sinsy import (
    EXIT_DICTIONARY,
    EXIT_SCORE,
    EXIT_SYNTHESIS,
    EXIT_VOICE,
    load_sinsy_module,
)

#: Sinsy returns samples at 16-bit scale.
_INT16_SCALE = 32768.0


def main(argv: list[str]) -> int:
    score, voice, dictionary, out = argv[:4]
    flags = argv[4:]
    labels_only = "--labels-only" in flags
    alpha = float(flags[flags.index("--alpha") + 1]) if "--alpha" in flags else None
    volume_db = float(flags[flags.index("--volume") + 1]) if "--volume" in flags else None
    out_folder = Path(out)
    sinsy = load_sinsy_module().Sinsy()
    if not sinsy.setLanguages("j", dictionary):
        return EXIT_DICTIONARY
    if not sinsy.loadVoices(voice):
        return EXIT_VOICE
    # Both after loadVoices, which sets the voice's own alpha and volume.
    if alpha is not None and not sinsy.setAlpha(alpha):
        print(f"[ERR] Sinsy refused alpha {alpha}", file=sys.stderr)
        return EXIT_VOICE
    if volume_db is not None and not sinsy.setVolume(volume_db):
        print(f"[ERR] Sinsy refused volume {volume_db} dB", file=sys.stderr)
        return EXIT_VOICE
    if not sinsy.loadScoreFromMusicXML(score):
        return EXIT_SCORE
    labels = sinsy.createLabelData(True, 1, 1).getData()  # monophone, overwrite, with times
    (out_folder / "labels.lab").write_text("\n".join(labels) + "\n", encoding="ascii")
    if labels_only:
        return 0
    try:
        samples, sample_rate = sinsy.synthesize()
    except RuntimeError as error:
        print(f"[ERR] {error}", file=sys.stderr)
        return EXIT_SYNTHESIS
    samples = np.asarray(samples, dtype=np.float64) / _INT16_SCALE
    clipped = int(np.count_nonzero(np.abs(samples) > 1.0))
    np.save(out_folder / "samples.npy", np.clip(samples, -1.0, 1.0).astype(np.float32))
    info = {"sample_rate": int(sample_rate), "clipped": clipped}
    (out_folder / "info.json").write_text(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
