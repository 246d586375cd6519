"""The child process that runs Sinsy for :mod:`acgmake.voice.sinsy` (not a public API).

``python -m acgmake.voice.sinsy_worker SCORE VOICE DICTIONARY OUT [--labels-only]`` writes
``OUT/labels.lab`` (Sinsy's monophone labels with times) and, unless ``--labels-only``,
``OUT/samples.npy`` (float32 in [-1, 1]) and ``OUT/info.json`` (the sample rate). The exit
code says what failed (see the ``EXIT_*`` constants); Sinsy's own messages go to stderr.
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
    labels_only = "--labels-only" in argv[4:]
    out_folder = Path(out)
    sinsy = load_sinsy_module().Sinsy()
    if not sinsy.setLanguages("j", dictionary):
        return EXIT_DICTIONARY
    if not sinsy.loadVoices(voice):
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
    samples = np.clip(np.asarray(samples, dtype=np.float64) / _INT16_SCALE, -1.0, 1.0)
    np.save(out_folder / "samples.npy", samples.astype(np.float32))
    (out_folder / "info.json").write_text(json.dumps({"sample_rate": int(sample_rate)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
