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

What a wider gap lets through is settled by :func:`claims`, as Krita's colorize mask leaves a
part without a key stroke empty: the paper is cut into *rooms* at its doors (an opening
narrower than the room behind it, :func:`rooms`); each hint claims its room, the rooms along
the picture's border that no hint claims are the page's exterior (the background), and
:func:`doors` walls the claims off from each other, so a ring's colour stays in the ring
however wide the gap in its outline (short of four fifths of its inside: then it is a ``C``,
open), and the page beside it stays clear.
"""

from __future__ import annotations

from dataclasses import dataclass

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


#: An opening narrower than this share of the room behind it (of the widest circle that fits
#: in the room) is a door: the room is a place of its own, even where a gap in its outline is
#: wider than ``gap_px``. A ring whose outline has a gap up to four fifths of its inside's
#: width has a door; a ``C`` or a ``U`` open wider than that has none.
DOOR_RATIO = 0.8
#: A room must be at least this much wider than its door (pixels of half-width): the pixel
#: grid's bumps along an outline are not rooms.
MIN_DEPTH_PX = 2.0


@dataclass
class Rooms:
    """The paper cut into rooms (:func:`rooms`)."""

    #: int32 labels from 1; 0 on ink.
    labels: np.ndarray
    #: Per room: the radius of the widest circle that fits in it (px; index 0 unused).
    widest: np.ndarray
    #: The openings between rooms of one area, widest first: room, other room, and half the
    #: opening's width (px).
    doors: tuple[np.ndarray, np.ndarray, np.ndarray]


def rooms(ink: np.ndarray, area_map: np.ndarray, *, door_ratio: float = DOOR_RATIO) -> Rooms:
    """The paper of every area (``area_map``, from :func:`areas`) cut into rooms at its doors.

    The rooms are the basins of the distance to the nearest ink, which meet at the narrowest
    point of every opening (the way the paper's medial axis pinches there); two basins stay
    apart when the opening between them is narrower than ``door_ratio`` of the smaller one's
    widest inscribed circle, and merge otherwise (so the many small basins of one room's
    uneven outline are one room). A room never spans two areas.

    Returns the :class:`Rooms`.
    """
    from skimage.segmentation import watershed

    paper = ~ink
    # The picture's edge bounds a room as a line does: the page around a drawing is one room,
    # not four whose widest circles reach past its corners.
    distance = ndimage.distance_transform_edt(np.pad(paper, 1))[1:-1, 1:-1]
    peaks = paper & (distance >= ndimage.maximum_filter(distance, size=3))
    markers, count = ndimage.label(peaks, structure=np.ones((3, 3), bool))
    basins = watershed(-distance, markers, mask=paper)
    # A basin split between two areas is two places.
    cells = _numbered(np.where(paper, area_map.astype(np.int64) * (count + 1) + basins, 0))
    found = _openings(cells, distance, area_map)
    size = int(cells.max()) + 1
    top = _largest(distance, cells, size)
    parent = np.arange(size)
    for first, second, width in zip(*found, strict=True):
        a, b = _root(parent, first), _root(parent, second)
        smaller = min(top[a], top[b])
        if a != b and (width >= door_ratio * smaller or width > smaller - MIN_DEPTH_PX):
            parent[b] = a
            top[a] = max(top[a], top[b])
    owner = np.array([_root(parent, cell) for cell in range(size)])
    owner[0] = 0
    _, owner = np.unique(owner, return_inverse=True)
    labels = owner[cells].astype(np.int32)
    widest = _largest(distance, labels, int(labels.max()) + 1)
    return Rooms(labels, widest, _openings(labels, distance, area_map))


def _numbered(key: np.ndarray) -> np.ndarray:
    """``key`` (non-negative ints, 0 kept as 0) renumbered 1, 2, ... in order: int32."""
    if int(key.max(initial=0)) <= 4 * key.size:  # a table is quicker than sorting
        present = np.zeros(int(key.max(initial=0)) + 1, bool)
        present[key] = True
        present[0] = False
        return np.cumsum(present).astype(np.int32)[key]
    found, inverse = np.unique(key, return_inverse=True)
    return (inverse.reshape(key.shape) + (0 if found[0] == 0 else 1)).astype(np.int32)


def _largest(values: np.ndarray, labels: np.ndarray, size: int) -> np.ndarray:
    """The largest of ``values`` under each label 0 .. ``size`` - 1 (float64)."""
    largest = np.zeros(size, np.float64)
    np.maximum.at(largest, labels.ravel(), values.ravel())
    return largest


def _root(parent: np.ndarray, item: int) -> int:
    """The representative of ``item`` in the union-find forest ``parent`` (paths halved)."""
    while parent[item] != item:
        parent[item] = parent[parent[item]]
        item = parent[item]
    return item


def _openings(
    cells: np.ndarray, distance: np.ndarray, area_map: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pair of neighbouring ``cells`` (labels, 0 = ink) of one area and how wide their
    opening is: the largest distance to ink along their shared edge. Widest first."""
    firsts, seconds, widths = [], [], []
    for a, b, da, db, aa, ab in (
        (
            cells[:, :-1],
            cells[:, 1:],
            distance[:, :-1],
            distance[:, 1:],
            area_map[:, :-1],
            area_map[:, 1:],
        ),
        (cells[:-1], cells[1:], distance[:-1], distance[1:], area_map[:-1], area_map[1:]),
    ):
        meet = (a != b) & (a > 0) & (b > 0) & (aa == ab)
        firsts.append(np.minimum(a, b)[meet])
        seconds.append(np.maximum(a, b)[meet])
        widths.append(np.minimum(da, db)[meet])
    first, second, width = (np.concatenate(part) for part in (firsts, seconds, widths))
    order = np.lexsort((-width, second, first))
    first, second, width = first[order], second[order], width[order]
    keep = np.ones(first.size, bool)
    keep[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    first, second, width = first[keep], second[keep], width[keep]
    widest = np.argsort(-width, kind="stable")
    return first[widest], second[widest], width[widest]


#: The claim of the page's exterior in :func:`claims`: background nobody asked to paint.
EXTERIOR = 1


def claims(
    ink: np.ndarray,
    area_map: np.ndarray,
    seeds: np.ndarray,
    *,
    door_ratio: float = DOOR_RATIO,
) -> np.ndarray:
    """Whose each room of the paper is: a hint's, the page's exterior, or nobody's yet.

    A hint (a dot or stroke of ``seeds``, int labels, 0 = none) claims the room
    (:func:`rooms`) that holds most of it. An area (``area_map``) that touches the picture's
    border and holds no hint is exterior as a whole. In an area that holds hints, the rooms
    that lie along the border, meeting it over more than their own width, are the exterior
    (a room that meets it over less is a shape the border cuts: a strand of hair or a sleeve
    running off the page), unless one of them holds a hint: then the user paints the
    background, and none of the area is exterior. A room that nobody claims joins the claim
    it opens onto most widely (a watershed over the rooms, widest openings first); two claims
    never join, so a gap in a hinted shape's outline, however much wider than ``gap_px``, is a
    door its colour and the exterior, or another colour, meet at.

    Returns int32 per pixel: 0 on ink (and where nothing reaches), :data:`EXTERIOR`, or
    ``EXTERIOR + 1 + label`` for a room of one hint colour; a room holding hints of several
    colours has a claim of its own above those (the flood shares it out).
    """
    found = rooms(ink, area_map, door_ratio=door_ratio)
    labels, size = found.labels, found.widest.size
    paper = labels > 0
    tag = np.zeros(size, np.int64)
    mixed = EXTERIOR + 2 + int(seeds.max(initial=0))
    area_of = np.zeros(size, np.int64)
    area_of[labels[paper]] = area_map[paper]
    for room, colours in _hinted_rooms(labels, seeds * paper, area_of).items():
        tag[room] = EXTERIOR + 1 + colours[0] if len(colours) == 1 else mixed + room
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    along_border = np.bincount(edge, minlength=size) > 2 * found.widest
    along_border[0] = False
    painted_areas = np.unique(area_of[along_border & (tag > 0)])
    tag[along_border & (tag == 0) & ~np.isin(area_of, painted_areas)] = EXTERIOR
    parent = np.arange(size)
    for first_room, second_room in zip(*found.doors[:2], strict=True):
        a, b = _root(parent, first_room), _root(parent, second_room)
        if a != b and (tag[a] == tag[b] or not (tag[a] and tag[b])):
            parent[b] = a
            tag[a] = max(tag[a], tag[b])
    roots = np.array([_root(parent, room) for room in range(size)])
    claim = tag[roots]
    claim[0] = 0
    found_claims = claim[labels]
    unhinted_on_border = np.setdiff1d(border_areas(area_map), np.unique(area_of[tag > EXTERIOR]))
    found_claims[paper & np.isin(area_map, unhinted_on_border)] = EXTERIOR
    return found_claims.astype(np.int32)


def doors(claim: np.ndarray, area_map: np.ndarray) -> np.ndarray:
    """The walls between rooms of different claims (:func:`claims`) in one area: the pixels
    of the higher claim next to a lower one, so the exterior (the lowest) keeps all of its
    own. As ink for :func:`fill`, they keep each colour to its rooms until it has filled
    them: colours meet at the doors, not wherever their floods happen to meet in an opening.
    Returns a bool mask."""
    wall = np.zeros(claim.shape, bool)
    for here, there, area_here, area_there, mark in (
        (claim[:, :-1], claim[:, 1:], area_map[:, :-1], area_map[:, 1:], wall[:, :-1]),
        (claim[:, 1:], claim[:, :-1], area_map[:, 1:], area_map[:, :-1], wall[:, 1:]),
        (claim[:-1], claim[1:], area_map[:-1], area_map[1:], wall[:-1]),
        (claim[1:], claim[:-1], area_map[1:], area_map[:-1], wall[1:]),
    ):
        mark |= (there > 0) & (here > there) & (area_here == area_there)
    return wall


def strays(claim: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The hint pixels (``seeds`` > 0) that lie in a room another claim holds (:func:`claims`
    of those seeds): the rim of a dot that spills over a gap into the page or the next shape.
    Returns a bool mask."""
    mixed = claim > EXTERIOR + 1 + int(seeds.max(initial=0))
    return (seeds > 0) & (claim > 0) & ~mixed & (claim - EXTERIOR - 1 != seeds)


def _hinted_rooms(
    labels: np.ndarray, seeds: np.ndarray, area_of: np.ndarray, *, share: float = 0.25
) -> dict[int, list[int]]:
    """The hint colours (``seeds`` labels) each room (``labels``; ``area_of`` gives each
    room's area) holds, sorted. A dot or stroke counts, in every area that holds at least
    ``share`` of it, for the room there that holds most of it: a stroke over a line seeds
    both sides, and a dot as wide as a small ring that spills into its gap is the ring's."""
    hinted = seeds > 0
    blobs, count = ndimage.label(hinted, structure=np.ones((3, 3), bool))
    if count == 0:
        return {}
    # Touching dots of two colours are two.
    blobs = _numbered(np.where(hinted, blobs * (int(seeds.max()) + 1) + seeds, 0))
    count = int(blobs.max())
    colour_of = _largest(seeds, blobs, count + 1).astype(int)
    pairs, sizes = np.unique(np.stack([blobs[hinted], labels[hinted]]), axis=1, return_counts=True)
    blob_size = np.bincount(pairs[0], weights=sizes, minlength=count + 1)
    in_area: dict[tuple[int, int], int] = {}
    best: dict[tuple[int, int], tuple[int, int]] = {}
    for blob, room, size in zip(pairs[0], pairs[1], sizes, strict=True):
        if room == 0:
            continue
        key = (int(blob), int(area_of[room]))
        in_area[key] = in_area.get(key, 0) + int(size)
        if size > best.get(key, (0, 0))[0]:
            best[key] = (int(size), int(room))
    room_of = {
        key: best[key][1] for key, size in in_area.items() if size >= share * blob_size[key[0]]
    }
    found: dict[int, set[int]] = {}
    for (blob, _), room in room_of.items():
        found.setdefault(room, set()).add(int(colour_of[blob]))
    return {room: sorted(colours) for room, colours in found.items()}
