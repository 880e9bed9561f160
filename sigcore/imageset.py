"""In-memory image stacks and pose tables in sigcore's internal convention.

Readers turn every file format into an :class:`ImageSet`; writers take one.
Nothing here knows about file formats, Euler angles or Å shifts: poses are
rotation matrices in the RELION sense (``A`` maps map coordinates into the
image frame) and shifts are in pixels with the RELION sign (translate the
image by ``+shift`` to centre it). See ``CONVENTIONS.md`` §1 and DESIGN §4.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ImageSet", "PoseTable"]


@dataclass(frozen=True, slots=True)
class PoseTable:
    """Orientations assigned to images; several rows may refer to one image.

    Parameters
    ----------
    image_index : ndarray, shape (m,), int64
        0-based index of the image (in the owning stack) each row refers to.
    rotations : ndarray, shape (m, 3, 3), float64
        Rotation matrices, RELION sense (reference -> particle frame); mirrors
        are always folded in.
    shifts : ndarray, shape (m, 2), float64
        (x, y) in pixels, RELION sign.
    weights : ndarray, shape (m,), float64
        Reconstruction weight of each row (1 when the file has none).
    extra : mapping of str to ndarray, shape (m,)
        Optional per-row columns (e.g. ``"correlation"``, ``"imed"``,
        ``"direction"``) that writers may carry along.
    """

    image_index: NDArray[np.int64]
    rotations: NDArray[np.float64]
    shifts: NDArray[np.float64]
    weights: NDArray[np.float64]
    extra: Mapping[str, NDArray[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = len(self.image_index)
        object.__setattr__(
            self, "image_index", np.asarray(self.image_index, dtype=np.int64)
        )
        object.__setattr__(
            self, "rotations", np.asarray(self.rotations, dtype=np.float64)
        )
        object.__setattr__(self, "shifts", np.asarray(self.shifts, dtype=np.float64))
        object.__setattr__(self, "weights", np.asarray(self.weights, dtype=np.float64))
        if self.rotations.shape != (m, 3, 3):
            raise ValueError(f"rotations must have shape ({m}, 3, 3)")
        if self.shifts.shape != (m, 2):
            raise ValueError(f"shifts must have shape ({m}, 2)")
        if self.weights.shape != (m,):
            raise ValueError(f"weights must have shape ({m},)")
        for name, column in self.extra.items():
            if len(column) != m:
                raise ValueError(f"extra column {name!r} must have {m} rows")

    def __len__(self) -> int:
        return len(self.image_index)

    @classmethod
    def identity(cls, n: int) -> PoseTable:
        """Return ``n`` rows of identity rotations, zero shifts and unit weights."""
        return cls(
            image_index=np.arange(n),
            rotations=np.broadcast_to(np.eye(3), (n, 3, 3)).copy(),
            shifts=np.zeros((n, 2)),
            weights=np.ones(n),
        )

    def take(self, rows: NDArray[Any]) -> PoseTable:
        """Return the sub-table of the given rows (indices or boolean mask)."""
        return PoseTable(
            image_index=self.image_index[rows],
            rotations=self.rotations[rows],
            shifts=self.shifts[rows],
            weights=self.weights[rows],
            extra={k: np.asarray(v)[rows] for k, v in self.extra.items()},
        )


@dataclass(frozen=True, slots=True)
class ImageSet:
    """A stack of square 2D images with pixel size and optional poses.

    Parameters
    ----------
    images : ndarray, shape (n, ny, nx), float32
        The images, centre at index ``(ny // 2, nx // 2)``.
    pixel_size : float or None
        Å per pixel; ``None`` when the file does not record it.
    poses : PoseTable or None
        Orientations, one or more rows per image, or ``None``.
    source : Path or None
        The file this set was read from (used in messages and by converters).
    metadata : mapping
        Format-level facts worth carrying (e.g. optics ``voltage``), never needed
        by the algorithm.
    """

    images: NDArray[np.float32]
    pixel_size: float | None = None
    poses: PoseTable | None = None
    source: Path | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        images = np.asarray(self.images, dtype=np.float32)
        if images.ndim == 2:
            images = images[None]
        if images.ndim != 3:
            raise ValueError("images must have shape (n, ny, nx)")
        object.__setattr__(self, "images", images)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def box(self) -> int:
        """Side length of the (square) images in pixels."""
        return int(self.images.shape[-1])
