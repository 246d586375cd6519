"""Where the faces are in a user's character picture: face box, eyes, mouth and chin.

Two small networks trained on the drawn set (``acgmake.models.facefind_train``), heavily
augmented so that they also read other anime-style pictures:

* the detector sees the picture letterboxed to 256 px and marks face centres on a 32 x 32 grid
  (CenterNet style: a centre heatmap plus the box's width and height);
* the landmark net sees each candidate face cut out (a square 1.4 x the face's size, 64 px)
  and gives the face box again, more exactly, both eye boxes, the mouth box, the chin and
  whether this really is a face. It runs twice, the second time on the box it gave first.

Both are in one float16 safetensors file (1.6 MB, 0.8 M parameters). Reproduce it with

    python -m acgmake.models.facefind_train --out src/acgmake/models/weights/facefind.safetensors

(one thread: about 4 minutes to draw 2,400 characters, 23 to train). On held-out drawn
characters ``benchmarks/face_report.py`` measured: every face found (IoU >= 0.5) at 256, 512
and 1024 px, as lines only, as a pencil scan, turned 15 to 30 degrees and two to a picture,
eyes, mouth and chin within 1.6 to 2.9 % of the face's width on average; 99 % of faces in
training-like mixed pictures (0 to 3 characters, faces 8 to 90 % of the short side, random
styles); no false faces in 60 pictures without one; every generated character enlarged to 256
or 512 px (mouth 4.7 %: the canonical layout's mouth box is only where a mouth sits on
average). About 12 ms for a 512 px picture, 19 ms for 1024 px, on one thread. The drawn
set is all it has seen: real anime pictures are untested here (there are none to test on).

With ``second_opinion``, faces that the AnimeFace 2009 library (the optional ``animeface``
package) finds and the networks do not are added with ``source="animeface"``.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from acgmake.errors import UserError

SHIPPED_NAME = "facefind.safetensors"
TRAIN_COMMAND = (
    "python -m acgmake.models.facefind_train --out src/acgmake/models/weights/facefind.safetensors"
)

DETECT_PX = 256  # the detector's input side
STRIDE = 8  # detector grid cell, in input pixels
CROP_PX = 64  # the landmark net's input side
CROP_SCALE = 1.4  # crop side / face size (the larger of the face box's width and height)
PAD_VALUE = 128  # letterbox padding (grey)
MAX_CANDIDATES = 12
PEAK_FLOOR = 0.15  # detector peaks below this are not looked at
NMS_IOU = 0.4
#: Faces smaller than this fraction of the picture's short side are left out: training
#: shows faces from 8 % up, and what looks like a face below 5 % is mostly a hair ornament.
MIN_FACE = 0.05
#: Score given to a face that only AnimeFace found (it gives no confidence of its own; its
#: faces are usually right, but it is a different kind of detector, so they sit just at the
#: default threshold and any stricter ``min_score`` drops them).
ANIMEFACE_SCORE = 0.5
ANIMEFACE_IOU = 0.3

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 normalised 0..1 (width, height)


@dataclass(frozen=True)
class FoundFace:
    """One face in a picture (coordinates normalised to the picture's width and height)."""

    box: Box  # the face, forehead to chin, cheek to cheek (like the drawn set's "face" box)
    eyes: tuple[Box, Box]  # the eye on the picture's left first
    mouth: Box  # like the drawn set's "mouth_box"
    chin: tuple[float, float]
    score: float  # 0..1 confidence
    source: str = "acgmake"  # or "animeface"


def shipped_detector() -> Path:
    """The face finder's weights that come with acgmake (trained on the drawn set)."""
    return Path(__file__).with_name("weights") / SHIPPED_NAME


# ---------------------------------------------------------------------------------------------
# The networks


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class FaceDetector(nn.Module):
    """256 x 256 RGB in [-1, 1] -> per 8 px cell: face-centre logit, centre offset (2) and
    log face width and height (2, relative to DETECT_PX)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv(3, 16, 2), _conv(16, 24, 2), _conv(24, 24))  # 1/4
        self.down8 = nn.Sequential(_conv(24, 48, 2), _conv(48, 48))
        self.down16 = nn.Sequential(_conv(48, 64, 2), _conv(64, 64))
        self.down32 = nn.Sequential(_conv(64, 96, 2), _conv(96, 96), _conv(96, 96))
        self.lateral16 = nn.Conv2d(96, 64, 1)
        self.merge16 = _conv(64, 64)
        self.lateral8 = nn.Conv2d(64, 48, 1)
        self.merge8 = _conv(48, 48)
        self.head = nn.Sequential(_conv(48, 32), nn.Conv2d(32, 5, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x8 = self.down8(self.stem(x))
        x16 = self.down16(x8)
        x32 = self.down32(x16)
        y16 = self.merge16(x16 + F.interpolate(self.lateral16(x32), scale_factor=2.0))
        y8 = self.merge8(x8 + F.interpolate(self.lateral8(y16), scale_factor=2.0))
        return self.head(y8)


#: The landmark net's outputs, in crop coordinates (0..1 across the crop).
LANDMARKS = ("face", "left_eye", "right_eye", "mouth", "chin")
N_COORDS = 18  # 4 boxes x 4 + chin x, y


class FaceLandmarks(nn.Module):
    """64 x 64 face crop in [-1, 1] -> face / eye / eye / mouth boxes and chin (18 numbers,
    crop coordinates) and a face-or-not logit."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            _conv(3, w),
            nn.MaxPool2d(2),
            _conv(w, 32),
            _conv(32, 32),
            nn.MaxPool2d(2),
            _conv(32, 64),
            _conv(64, 64),
            nn.MaxPool2d(2),
            _conv(64, 96),
            _conv(96, 96),
            nn.MaxPool2d(2),
        )
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(96 * 16, 128), nn.ReLU(inplace=True))
        self.out = nn.Linear(128, N_COORDS + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(self.body(x)))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 RGB pictures N x H x W x 3 as a float tensor N x 3 x H x W in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


@functools.lru_cache(maxsize=4)
def load_detector(path: str | None = None) -> tuple[FaceDetector, FaceLandmarks]:
    """The two networks stored at ``path`` (default: the shipped file), in eval mode."""
    from safetensors.torch import load_file

    file = Path(path) if path else shipped_detector()
    if not file.is_file():
        raise UserError(f"no face finder weights at {file}; train them with {TRAIN_COMMAND}")
    state = load_file(str(file))
    detector, landmarks = FaceDetector(), FaceLandmarks()
    for prefix, net in (("detector.", detector), ("landmarks.", landmarks)):
        net.load_state_dict(
            {k[len(prefix) :]: v.float() for k, v in state.items() if k.startswith(prefix)}
        )
        net.eval()
    return detector, landmarks


# ---------------------------------------------------------------------------------------------
# Pictures in


def as_rgb(picture: np.ndarray) -> np.ndarray:
    """uint8 RGB H x W x 3 from RGB, RGBA (composited over white) or grey H x W (or H x W x 1)."""
    picture = np.asarray(picture)
    if picture.dtype != np.uint8:
        raise UserError(f"the picture must be uint8, not {picture.dtype}")
    if picture.ndim == 3 and picture.shape[2] == 1:
        picture = picture[..., 0]
    if picture.ndim == 2:
        return np.repeat(picture[..., None], 3, axis=2)
    if picture.ndim != 3 or picture.shape[2] not in (3, 4):
        raise UserError(f"a picture must be H x W grey, RGB or RGBA, not {picture.shape}")
    if picture.shape[2] == 3:
        return picture
    out = np.empty(picture.shape[:2] + (3,), np.uint8)
    for top in range(0, picture.shape[0], 256):  # in bands: a huge picture stays in memory
        band = picture[top : top + 256].astype(np.uint32)
        alpha = band[..., 3:4]
        out[top : top + 256] = (band[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255
    return out


def letterbox(rgb: np.ndarray, side: int = DETECT_PX) -> tuple[np.ndarray, float]:
    """``rgb`` scaled so its longer side is ``side`` and padded (right and bottom) to a
    square; returns the square and the scale (input pixels per picture pixel)."""
    import cv2

    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    shrink = scale < 1
    resized = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    out = np.full((side, side, 3), PAD_VALUE, np.uint8)
    out[: size[1], : size[0]] = resized
    return out, scale


def crop_square(rgb: np.ndarray, center: tuple[float, float], side: float, px: int = CROP_PX):
    """The square of ``side`` picture pixels about ``center``, resampled to ``px`` (outside the
    picture: PAD_VALUE)."""
    import cv2

    height, width = rgb.shape[:2]
    x0 = int(min(max(math.floor(center[0] - side / 2), 0), width - 1))
    y0 = int(min(max(math.floor(center[1] - side / 2), 0), height - 1))
    x1 = int(max(min(math.ceil(center[0] + side / 2), width), x0 + 1))
    y1 = int(max(min(math.ceil(center[1] + side / 2), height), y0 + 1))
    region = rgb[y0:y1, x0:x1]
    scale = px / side
    dx = dy = 1.0
    if scale < 0.5:  # shrinking a lot: average first, so the crop is not aliased
        factor = 1 / scale / 1.5
        size = (max(1, round(region.shape[1] / factor)), max(1, round(region.shape[0] / factor)))
        small = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        dx, dy = region.shape[1] / size[0], region.shape[0] / size[1]
        region = small
    # A region pixel (i, j) is picture pixel ((i + 0.5) * dx - 0.5 + x0, ...).
    matrix = np.array(
        [
            [scale * dx, 0, scale * (0.5 * dx - 0.5 + x0 - center[0]) + px / 2],
            [0, scale * dy, scale * (0.5 * dy - 0.5 + y0 - center[1]) + px / 2],
        ],
        np.float32,
    )
    return cv2.warpAffine(
        region,
        matrix,
        (px, px),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(PAD_VALUE,) * 3,
    )


# ---------------------------------------------------------------------------------------------
# Finding faces


def decode_peaks(output: torch.Tensor, floor: float = PEAK_FLOOR, top: int = MAX_CANDIDATES):
    """Face candidates from the detector's output (5 x G x G): rows of score, cx, cy, w, h in
    detector-input pixels, best first."""
    heat = torch.sigmoid(output[0])
    peaks = (heat == F.max_pool2d(heat[None, None], 3, 1, 1)[0, 0]) & (heat >= floor)
    ys, xs = torch.nonzero(peaks, as_tuple=True)
    if len(ys) == 0:
        return np.zeros((0, 5), np.float32)
    scores = heat[ys, xs]
    order = torch.argsort(scores, descending=True)[:top]
    ys, xs, scores = ys[order], xs[order], scores[order]
    cx = (xs.float() + output[1, ys, xs]) * STRIDE
    cy = (ys.float() + output[2, ys, xs]) * STRIDE
    w = torch.exp(output[3, ys, xs]) * DETECT_PX
    h = torch.exp(output[4, ys, xs]) * DETECT_PX
    return torch.stack([scores, cx, cy, w, h], 1).numpy()


def box_iou(a, b) -> float:
    """Intersection over union of two boxes x0, y0, x1, y1."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@torch.no_grad()
def read_crops(landmarks: FaceLandmarks, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (N x 18, crop units) and face probabilities (N) of uint8 crops."""
    out = landmarks(to_tensor(crops))
    return out[:, :N_COORDS].numpy(), torch.sigmoid(out[:, N_COORDS]).numpy()


@torch.no_grad()
def _find(rgb: np.ndarray, weights: str | None) -> list[tuple[np.ndarray, float]]:
    """Faces as (18 coordinates in picture pixels, score), not yet thresholded."""
    detector, landmarks = load_detector(weights)
    square, scale = letterbox(rgb)
    candidates = decode_peaks(detector(to_tensor(square[None]))[0])
    if not len(candidates):
        return []
    # Picture pixels: centre and the face's size (the larger side), from the detector.
    centers = candidates[:, 1:3] / scale
    sizes = np.maximum(candidates[:, 3], candidates[:, 4]) / scale
    coords = probs = None
    for _ in range(2):  # the second pass crops about the face box the first one gave
        sides = np.maximum(sizes * CROP_SCALE, 4.0)
        crops = np.stack(
            [crop_square(rgb, tuple(c), s) for c, s in zip(centers, sides, strict=True)]
        )
        local, probs = read_crops(landmarks, crops)
        corner = centers - sides[:, None] / 2
        coords = local * sides[:, None]
        coords[:, 0::2] += corner[:, :1]
        coords[:, 1::2] += corner[:, 1:]
        face = coords[:, :4]
        centers = (face[:, :2] + face[:, 2:]) / 2
        sizes = np.maximum(face[:, 2] - face[:, 0], face[:, 3] - face[:, 1])
    # Both must agree: the detector's peak and the landmark net's face-or-not.
    scores = np.clip(probs, 0, 1) * candidates[:, 0]
    smallest = max(2.0, MIN_FACE * min(rgb.shape[:2]))
    found: list[tuple[np.ndarray, float]] = []
    for i in np.argsort(-scores, kind="stable"):
        if sizes[i] < smallest or any(
            box_iou(coords[i, :4], kept[:4]) > NMS_IOU for kept, _ in found
        ):
            continue
        found.append((coords[i], float(scores[i])))
    return found


def _normalised(box, width: int, height: int) -> Box:
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    return (
        min(max(x0 / width, 0.0), 1.0),
        min(max(y0 / height, 0.0), 1.0),
        min(max(x1 / width, 0.0), 1.0),
        min(max(y1 / height, 0.0), 1.0),
    )


def _face_from_coords(coords: np.ndarray, score: float, width: int, height: int) -> FoundFace:
    eyes = sorted([coords[4:8], coords[8:12]], key=lambda box: box[0] + box[2])
    return FoundFace(
        box=_normalised(coords[:4], width, height),
        eyes=(_normalised(eyes[0], width, height), _normalised(eyes[1], width, height)),
        mouth=_normalised(coords[12:16], width, height),
        chin=(
            min(max(float(coords[16]) / width, 0.0), 1.0),
            min(max(float(coords[17]) / height, 0.0), 1.0),
        ),
        score=round(score, 6),
    )


def _area(box: Box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def find_faces(
    picture: np.ndarray,
    *,
    min_score: float = 0.5,
    second_opinion: bool = True,
    weights: str | Path | None = None,
) -> list[FoundFace]:
    """The faces in ``picture``, largest first.

    ``picture`` is uint8 RGB (H x W x 3), RGBA (H x W x 4; transparent pixels are background,
    composited over white) or grey (H x W). Faces scoring below ``min_score`` are left out.
    With ``second_opinion`` and the ``animeface`` package installed, faces that AnimeFace
    finds and ours do not (IoU < 0.3) are added, scored ANIMEFACE_SCORE. The same picture
    always gives the same faces. Big pictures are read at reduced size (the detector at 256
    px, each face crop at 64 px, AnimeFace at most 1024 px), so time and memory stay bounded.
    """
    from acgmake.models.character import one_thread

    rgb = as_rgb(picture)
    height, width = rgb.shape[:2]
    if height < 8 or width < 8:
        return []
    work = rgb
    if max(height, width) > 2048:  # face crops come from this; 2048 px is plenty
        import cv2

        factor = 2048 / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        work = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    with one_thread():
        raw = _find(work, str(weights) if weights else None)
    h_work, w_work = work.shape[:2]
    faces = [_face_from_coords(c, s, w_work, h_work) for c, s in raw if s >= min_score]
    if second_opinion:
        for face in animeface_faces(work):
            if face.score >= min_score and all(
                box_iou(face.box, f.box) < ANIMEFACE_IOU for f in faces
            ):
                faces.append(face)
    return sorted(faces, key=lambda f: (-_area(f.box), -f.score, f.box))


def animeface_faces(rgb: np.ndarray, max_px: int = 1024) -> list[FoundFace]:
    """The faces the AnimeFace 2009 library finds (empty when ``animeface`` is not installed),
    read at most ``max_px`` on the longer side."""
    try:
        import animeface
    except ImportError:
        return []
    from PIL import Image

    height, width = rgb.shape[:2]
    image = Image.fromarray(rgb)
    if max(height, width) > max_px:
        factor = max_px / max(height, width)
        image = image.resize(
            (max(1, round(width * factor)), max(1, round(height * factor))),
            Image.Resampling.BOX,
        )
    w, h = image.size
    with warnings.catch_warnings():  # it calls Image.getdata, which Pillow 12 deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        results = animeface.detect(image)
    faces = []
    for found in results:

        def box(part) -> Box:
            pos = part.pos
            return _normalised((pos.x, pos.y, pos.x + pos.width, pos.y + pos.height), w, h)

        eyes = sorted([box(found.left_eye), box(found.right_eye)], key=lambda b: b[0] + b[2])
        chin = found.chin.pos
        faces.append(
            FoundFace(
                box=box(found.face),
                eyes=(eyes[0], eyes[1]),
                mouth=box(found.mouth),
                chin=(min(max(chin.x / w, 0.0), 1.0), min(max(chin.y / h, 0.0), 1.0)),
                score=ANIMEFACE_SCORE,
                source="animeface",
            )
        )
    return faces
