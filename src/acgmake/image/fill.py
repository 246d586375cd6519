"""Flat colours from scribbles: each hint floods the area it sits in, stopped by the lines.

In the manner of Krita's colorize mask (LazyBrush: Sýkora, Dingliana and Collins, "LazyBrush:
Flexible Painting Tool for Hand-drawn Cartoons", 2009), as a seeded watershed: the colours
rise from their hints over a height map and meet where it is highest. The height is the ink
itself (a line is a wall) and, on the paper, how close a pixel is to ink: within
``gap_px / 2`` of a line a pixel is raised, most at the line. A gap in a line up to
``gap_px`` wide is therefore a pass higher than the paper on both sides of it: each side fills
from its own hint first and the colours meet in the gap, so no pixel of a colour ends up past
the line, however close to the gap its hint is (tests/test_fill.py measures it for gaps of 1
to 8 px, straight and diagonal lines 1 and 3 px thick). A wider gap is an opening: hints as
far from it on both sides share it, a hint next to it floods through. Areas without a hint take
the colour of a neighbour over the thinnest line between them, so every pixel gets a colour.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Gaps in a line up to this wide (working pixels) hold a colour in.
DEFAULT_GAP_PX = 8.0


def height_map(ink: np.ndarray, *, gap_px: float = DEFAULT_GAP_PX, edges=None) -> np.ndarray:
    """The watershed height of every pixel: walls of ink, ramps near them (see module).

    ``edges`` (optional float map, 0..1) adds colour edges of the picture as lower walls.
    Returns float32, paper far from ink at 0.
    """
    reach = max(gap_px / 2.0, 0.5)
    distance = ndimage.distance_transform_edt(~ink)
    height = np.maximum(reach + 0.5 - distance, 0.0)
    # Inside a line, the height grows with the depth into it: an area with no hint of its
    # own is reached over its thinnest line (the one most like a gap) first.
    depth = ndimage.distance_transform_edt(ink)
    height[ink] = reach + 2.0 + depth[ink]
    if edges is not None:
        height = height + (reach + 1.0) * np.clip(edges, 0.0, 1.0)
    return height.astype(np.float32)


def fill(
    ink: np.ndarray,
    seeds: np.ndarray,
    *,
    gap_px: float = DEFAULT_GAP_PX,
    edges: np.ndarray | None = None,
) -> np.ndarray:
    """Each pixel's seed label (int32, the values of ``seeds`` > 0) after the flood.

    ``ink`` is the boolean line mask; ``seeds`` int (0 = no hint). Hints on the ink itself
    are ignored (a stroke over a line seeds the areas on both sides). The lines go to the
    nearest area, half to each side, so flat colours run under them. Pixels no seed can reach
    (there are no seeds) are 0.
    """
    from skimage.segmentation import watershed

    markers = np.where(ink, 0, seeds).astype(np.int32)
    if not markers.any():
        return np.zeros(ink.shape, np.int32)
    labels = watershed(height_map(ink, gap_px=gap_px, edges=edges), markers)
    if ink.any() and (~ink).any():
        _, (near_y, near_x) = ndimage.distance_transform_edt(ink, return_indices=True)
        labels = labels[near_y, near_x]
    return labels.astype(np.int32)


def areas(ink: np.ndarray, *, gap_px: float = DEFAULT_GAP_PX) -> np.ndarray:
    """The picture cut into areas by its lines, gaps narrower than ``gap_px`` sealed.

    Every connected part of the paper farther than ``gap_px / 2`` from ink seeds an area,
    which then grows as in :func:`fill` (so narrow necks and small gaps split areas). Returns
    int32 labels from 1; small pockets too thin to hold a seed join their neighbours.
    """
    reach = max(gap_px / 2.0, 0.5)
    distance = ndimage.distance_transform_edt(~ink)
    cores, count = ndimage.label(distance > reach)
    # A closed part of the paper too thin to hold a core (a strand of hair, a highlight) is
    # an area of its own all the same.
    paper, _ = ndimage.label(~ink)
    has_core = np.zeros(paper.max() + 1, bool)
    has_core[paper[cores > 0]] = True
    thin = (paper > 0) & ~has_core[paper]
    thin_labels, _ = ndimage.label(thin)
    seeds = np.where(thin, thin_labels + count, cores)
    return fill(ink, seeds, gap_px=gap_px)


def border_areas(labels: np.ndarray) -> np.ndarray:
    """The area labels that touch the picture's border (a sorted int array)."""
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    found = np.unique(edge)
    return found[found > 0]
