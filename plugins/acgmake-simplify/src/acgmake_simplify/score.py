"""Line precision and recall with a distance tolerance, as line-art papers measure them.

Both drawings are thinned to their centre lines first, so that a line counts once whatever its
width: a doubled stroke is two lines (one of them wrong), a smudge is a tangle of wrong ones,
and a thick line is not rewarded for covering more of the truth.
"""

from __future__ import annotations

import numpy as np

#: A drawn centre-line pixel counts as right within this many pixels of a true one, and a true
#: one as found within this many of a drawn one.
TOLERANCE_PX = 2.0


def centre_lines(mask: np.ndarray) -> np.ndarray:
    """The one-pixel centre lines of a boolean line mask."""
    from skimage.morphology import skeletonize

    return skeletonize(mask)


def line_scores(drawn: np.ndarray, truth: np.ndarray, *, tolerance_px: float = TOLERANCE_PX):
    """``(precision, recall)`` of the boolean line mask ``drawn`` against ``truth`` (same
    shape), on their centre lines: the share of drawn centre-line pixels within
    ``tolerance_px`` of a true one, and of true ones within ``tolerance_px`` of a drawn one.
    An empty drawing scores 1 for precision (it drew nothing wrong) and 0 for recall."""
    from scipy import ndimage

    drawn, truth = centre_lines(drawn), centre_lines(truth)

    def near(mask: np.ndarray) -> np.ndarray:
        if not mask.any():
            return np.zeros_like(mask)
        return ndimage.distance_transform_edt(~mask) <= tolerance_px

    if not drawn.any():
        return 1.0, 0.0
    precision = float((drawn & near(truth)).sum() / drawn.sum())
    recall = float((truth & near(drawn)).sum() / max(int(truth.sum()), 1))
    return precision, recall
