"""The parameters of one reconstruction, validated once, before any work.

:class:`ReconstructionConfig` is a frozen dataclass holding every option of
``sigcore reconstruct`` with the original method's defaults (DESIGN §5,
ALGORITHM.md §2). :meth:`ReconstructionConfig.validate` rejects impossible
combinations with a :class:`~sigcore.errors.ConfigError` naming the parameter;
the data-dependent checks (box against shift range, pixel size against target
resolution) run as soon as the images are known. Nothing here reads files or
touches arrays.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigcore.errors import ConfigError

__all__ = [
    "COMPAT_MODES",
    "DEFAULT_ITERATIONS",
    "MAX_SHIFT_FRACTION",
    "ReconstructionConfig",
]

DEFAULT_ITERATIONS = 20
"""Default number of iterations.

Scipion runs 50. The schedule only moves the significance linearly from
``alpha0`` to ``alphaF``, so fewer iterations mean a coarser ramp, not a
different end point (the last iteration reaches ``alphaF``). In our runs on
the phantom (box 24, 60 images, 15° gallery) 8 to 12 iterations found the
fold for every seed tried; 20 leaves a margin for harder data at 40% of the
cost of 50, which is what makes the two-minute quick start possible. Ask for
50 to follow Scipion.
"""

MAX_SHIFT_FRACTION = 0.1
"""``--max-shift -1`` (unrestricted) searches shifts up to this fraction of the box.

Class averages are centred by 2D classification to within a few pixels and
the volume is re-centred every iteration, while the grid search costs grow as
the square of the range: 10% of the box (6 px at box 64) covers the practical
range. DESIGN §5.3 suggests a quarter of the box; pass ``--max-shift`` for more.
"""

COMPAT_MODES = ("none", "xmipp")


@dataclass(frozen=True, slots=True)
class ReconstructionConfig:
    """Every option of a reconstruction (DESIGN §5; CLI names in brackets).

    Parameters
    ----------
    symmetry : str
        Point group, Xmipp names (``c1``, ``c4``, ``d2``, ``i1``...) [--sym].
    reference : Path or None
        Starting volume; ``None`` starts from random poses [--reference].
    step : float
        Angular step of the gallery, degrees [--step].
    min_tilt, max_tilt : float
        Range of the tilt (polar angle) of the viewing direction, degrees:
        0 is a top view along +z, 90 a side view, 180 the bottom view
        [--min-tilt, --max-tilt].
    max_shift : float
        Largest shift searched, pixels of the *input* box, per axis; <= 0
        means :data:`MAX_SHIFT_FRACTION` of the box [--max-shift].
    alpha0, alpha_final : float
        Significance of the first and last iteration, percent
        [--alpha0, --alphaF].
    iterations : int
        Number of iterations, see :data:`DEFAULT_ITERATIONS` [--iterations].
    imed : bool
        Multiply the weights by the IMED factor [--imed/--no-imed].
    strict_direction : bool
        Drop pairs not significant for their direction [--strict-direction].
    neighbourhood : float
        Angular neighbourhood of the per-direction statistics, degrees
        [--neighbourhood].
    fisher : bool
        Fisher-z pre-selection [--no-fisher].
    max_resolution : float or None
        Target resolution, Å: working pixel about R/2 and low-pass at R
        [--max-resolution].
    mask_radius : float or None
        Radius of the soft spherical mask, Å; ``None``: half the box minus
        the soft edge [--mask-radius].
    keep_intermediates : bool
        Write every iteration's volume to ``iterations/`` [--keep-intermediates].
    backend : str
        Array backend name or ``"auto"`` [--backend].
    seed : int or None
        Seed of every random choice; ``None`` draws one (recorded in the
        report) [--seed].
    starts : int
        Independent random starts; the best by final reprojection agreement
        is kept [--starts].
    compat : str
        ``"none"`` (sigcore's choices) or ``"xmipp"`` (the original's:
        Fisher off, no neighbourhood, schedule divided by T, symmetry factor
        |S| - 1, mirrors off) [--compat].
    threads : int or None
        CPU threads for numba kernels; ``None`` leaves the default [--threads].
    """

    symmetry: str = "c1"
    reference: Path | None = None
    step: float = 5.0
    min_tilt: float = 0.0
    max_tilt: float = 180.0
    max_shift: float = -1.0
    alpha0: float = 80.0
    alpha_final: float = 99.5
    iterations: int = DEFAULT_ITERATIONS
    imed: bool = True
    strict_direction: bool = False
    neighbourhood: float = 10.0
    fisher: bool = True
    max_resolution: float | None = None
    mask_radius: float | None = None
    keep_intermediates: bool = False
    backend: str = "auto"
    seed: int | None = None
    starts: int = 1
    compat: str = "none"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.reference is not None and not isinstance(self.reference, Path):
            object.__setattr__(self, "reference", Path(self.reference))
        object.__setattr__(self, "symmetry", str(self.symmetry).lower())
        object.__setattr__(self, "compat", str(self.compat).lower())

    @property
    def xmipp(self) -> bool:
        """True in ``--compat xmipp`` mode."""
        return self.compat == "xmipp"

    def replace(self, **changes: Any) -> ReconstructionConfig:
        """Return a copy with some fields changed (validated again)."""
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def to_dict(self) -> dict[str, Any]:
        """Return the options as JSON-friendly values (for the report)."""
        out = dataclasses.asdict(self)
        out["reference"] = None if self.reference is None else str(self.reference)
        return out

    def validate(
        self,
        *,
        box: int | None = None,
        pixel_size: float | None = None,
        symmetry_order: int | None = None,
    ) -> None:
        """Reject impossible combinations before any work is done.

        Parameters
        ----------
        box : int, optional
            Side of the input images, pixels; enables the shift-range check.
        pixel_size : float, optional
            Å per pixel of the input; enables the resolution and mask checks.
        symmetry_order : int, optional
            |S|; looked up from :mod:`sigcore.symmetry` when not given.

        Raises
        ------
        ConfigError
            Naming the parameter and the problem.

        Warns
        -----
        UserWarning
            When the neighbourhood is below twice the step (the pooled
            statistics then hold few directions).
        """
        self._check_ranges()
        if symmetry_order is None:
            from sigcore.symmetry import get_symmetry

            symmetry_order = get_symmetry(self.symmetry).order
        self._check_alpha(symmetry_order)
        if box is not None:
            self._check_box(box)
        if pixel_size is not None:
            self._check_pixel_size(pixel_size, box)

    def _check_ranges(self) -> None:
        if self.compat not in COMPAT_MODES:
            raise ConfigError(
                f"compat: {self.compat!r} is not one of {', '.join(COMPAT_MODES)}"
            )
        if not 0.0 < self.step <= 90.0:
            raise ConfigError(f"step: {self.step:g} degrees is not in (0, 90]")
        if not 0.0 <= self.min_tilt < self.max_tilt <= 180.0:
            raise ConfigError(
                f"min_tilt/max_tilt: need 0 <= min_tilt < max_tilt <= 180, got "
                f"{self.min_tilt:g} and {self.max_tilt:g}"
            )
        if self.neighbourhood <= 0.0:
            raise ConfigError(f"neighbourhood: {self.neighbourhood:g} must be > 0")
        if self.step > self.neighbourhood:
            raise ConfigError(
                f"step {self.step:g} exceeds neighbourhood {self.neighbourhood:g}: "
                "no direction would have a neighbour; lower --step or raise "
                "--neighbourhood"
            )
        if self.neighbourhood < 2.0 * self.step:
            warnings.warn(
                f"neighbourhood {self.neighbourhood:g} is below twice the step "
                f"{self.step:g}: the per-direction statistics pool few directions",
                UserWarning,
                stacklevel=3,
            )
        if self.iterations < 1:
            raise ConfigError(f"iterations: {self.iterations} must be >= 1")
        if self.starts < 1:
            raise ConfigError(f"starts: {self.starts} must be >= 1")
        if self.starts > 1 and self.reference is not None:
            raise ConfigError(
                "starts: several random starts make no sense with a reference volume"
            )
        if self.max_resolution is not None and self.max_resolution <= 0.0:
            raise ConfigError(f"max_resolution: {self.max_resolution:g} must be > 0")
        if self.mask_radius is not None and self.mask_radius <= 0.0:
            raise ConfigError(f"mask_radius: {self.mask_radius:g} must be > 0")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads: {self.threads} must be >= 1")

    def _check_alpha(self, order: int) -> None:
        for name, value in (("alpha0", self.alpha0), ("alphaF", self.alpha_final)):
            if not 0.0 < value < 100.0:
                raise ConfigError(f"{name}: {value:g} is not a percentage in (0, 100)")
        if self.alpha0 > self.alpha_final:
            raise ConfigError(
                f"alpha0 {self.alpha0:g} exceeds alphaF {self.alpha_final:g}: the "
                "significance must not decrease"
            )
        from sigcore.significance import tail_probability

        tail_probability([self.alpha0], symmetry_order=order, compat=self.xmipp)

    def effective_max_shift(self, box: int) -> float:
        """Return the shift range in pixels of a box of side ``box``."""
        if self.max_shift > 0.0:
            return float(self.max_shift)
        return MAX_SHIFT_FRACTION * box

    def _check_box(self, box: int) -> None:
        if box < 16:
            raise ConfigError(f"images: box {box} px is too small (need >= 16)")
        shift = self.effective_max_shift(box)
        if shift > box / 4.0:
            raise ConfigError(
                f"max_shift: {shift:g} px is more than a quarter of the {box} px "
                "box; the images are too small for this shift range"
            )

    def _check_pixel_size(self, pixel_size: float, box: int | None) -> None:
        if pixel_size <= 0.0:
            raise ConfigError(f"pixel size: {pixel_size:g} Å must be > 0")
        if self.max_resolution is not None and self.max_resolution < 2 * pixel_size:
            raise ConfigError(
                f"max_resolution: {self.max_resolution:g} Å is beyond Nyquist "
                f"({2 * pixel_size:g} Å at {pixel_size:g} Å/px)"
            )
        if (
            self.mask_radius is not None
            and box is not None
            and self.mask_radius > box * pixel_size / 2.0
        ):
            raise ConfigError(
                f"mask_radius: {self.mask_radius:g} Å exceeds half the box "
                f"({box * pixel_size / 2.0:g} Å)"
            )
