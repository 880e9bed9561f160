"""The run report: ``report.json`` and PNG diagnostics.

``report.json`` holds every parameter, the software versions, the input and
working geometry, the backend used, per-iteration figures and timings, and the
agreement of every start. The PNGs show the central slices of the map, the
angular distribution of the significant assignments, the significance
figures per iteration and, for a sample of the working images, each image
next to the reprojection of the final map at its best significant pose
(:func:`reprojection_pairs`). matplotlib is optional and imported only inside
:func:`write_plots`; without it the plots are skipped (the report says so).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from sigcore.io.atomic import atomic_path

if TYPE_CHECKING:
    from sigcore.imageset import PoseTable
    from sigcore.scheduler import ReconstructionResult

__all__ = [
    "PLOTS",
    "REPROJECTION_COUNT",
    "build_report",
    "reprojection_pairs",
    "write_plots",
    "write_report",
]

PLOTS = (
    "slices.png",
    "angular_distribution.png",
    "significance.png",
    "reprojections.png",
)

# Images shown in ``reprojections.png``.
REPROJECTION_COUNT = 12


def _versions() -> dict[str, str]:
    from importlib import metadata

    import sigcore

    out = {"sigcore": sigcore.__version__, "python": platform.python_version()}
    for dist in ("numpy", "scipy", "numba", "pluggy", "mrcfile", "starfile"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def build_report(
    result: ReconstructionResult,
    *,
    source: str,
    elapsed: float,
    outputs: dict[str, str],
) -> dict[str, Any]:
    """Collect the JSON-friendly content of ``report.json``.

    Parameters
    ----------
    result : ReconstructionResult
    source : str
        The input (file name).
    elapsed : float
        Wall-clock seconds of the whole run.
    outputs : dict of str to str
        Files written, by role.

    Returns
    -------
    dict
    """
    run = result.run
    history = [h.to_dict() for h in result.history]
    totals: dict[str, float] = {}
    for h in history:
        for step, seconds in h["timings"].items():
            totals[step] = totals.get(step, 0.0) + seconds
    return {
        "sigcore_report": 1,
        "input": source,
        "parameters": result.config.to_dict(),
        "seed": run.seed,
        "versions": _versions(),
        "backend": run.backend,
        "geometry": {
            "n_images": run.n_images,
            "input_box": run.input_box,
            "input_pixel_size": run.input_pixel_size,
            "working_box": run.box,
            "working_pixel_size": run.pixel_size,
            "output_pixel_size": result.pixel_size,
            "gallery_directions": run.gallery_size,
            "mirror_search": run.mirror,
        },
        "starts": {
            "best": result.best_start,
            "agreement": {str(k): v for k, v in sorted(result.agreements.items())},
        },
        "iterations": history,
        "timings": {
            "total_seconds": elapsed,
            "per_step_seconds": totals,
            "mean_iteration_seconds": (
                sum(sum(h["timings"].values()) for h in history) / len(history)
                if history
                else 0.0
            ),
        },
        "outputs": outputs,
    }


def write_report(path: str | Path, report: dict[str, Any]) -> None:
    """Write ``report`` as indented JSON, atomically (replacing a stale one)."""
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_plots(directory: str | Path, result: ReconstructionResult) -> list[str]:
    """Draw the diagnostic PNGs into ``directory``.

    ``reprojections.png`` shows up to :data:`REPROJECTION_COUNT` of
    ``result.images`` (evenly spread over the stack) next to the final map
    reprojected at each one's best significant pose, with their correlation
    (see :func:`reprojection_pairs`); images without one read "no
    significant pose".

    Parameters
    ----------
    directory : str or Path
    result : ReconstructionResult

    Returns
    -------
    list of str
        The files written, all of :data:`PLOTS`; empty when matplotlib is
        not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    directory = Path(directory)
    written = []
    for name, draw in (
        (PLOTS[0], _slices),
        (PLOTS[1], _angular),
        (PLOTS[2], _significance),
        (PLOTS[3], _reprojections),
    ):
        fig = draw(plt, result)
        with atomic_path(directory / name, overwrite=True) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        plt.close(fig)
        written.append(name)
    return written


def _slices(plt: Any, result: ReconstructionResult) -> Any:
    v = result.volume
    c = v.shape[0] // 2
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, (title, image) in zip(
        axes,
        (
            ("z (xy plane)", v[c]),
            ("y (xz plane)", v[:, c]),
            ("x (yz plane)", v[:, :, c]),
        ),
        strict=True,
    ):
        ax.imshow(image, cmap="gray", origin="lower")
        ax.set_title(f"central slice {title}", fontsize=9)
        ax.set_axis_off()
    fig.suptitle(f"final map, {result.pixel_size:.3g} Å/voxel", fontsize=10)
    fig.tight_layout()
    return fig


def _angular(plt: Any, result: ReconstructionResult) -> Any:
    from sigcore.geometry import matrix_to_euler

    poses = result.assignments
    angles = matrix_to_euler(poses.rotations) if len(poses) else np.zeros((0, 3))
    fig = plt.figure(figsize=(7, 3.8))
    ax = fig.add_subplot(111, projection="mollweide")
    rot = np.radians(((angles[:, 0] + 180.0) % 360.0) - 180.0)
    lat = np.radians(90.0 - angles[:, 1])
    points = ax.scatter(rot, lat, c=poses.weights, s=6, cmap="viridis")
    fig.colorbar(points, ax=ax, shrink=0.7, label="weight")
    ax.set_title(f"{len(poses)} significant assignments (rot, 90 - tilt)", fontsize=10)
    ax.grid(True)
    fig.tight_layout()
    return fig


def _significance(plt: Any, result: ReconstructionResult) -> Any:
    history = result.history
    x = np.arange(1, len(history) + 1)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    panels = (
        ("significant pairs", [h.significant_pairs for h in history]),
        ("mean weight", [h.mean_weight for h in history]),
        ("volume change", [h.volume_change for h in history]),
    )
    for ax, (title, values) in zip(axes, panels, strict=True):
        ax.plot(x, values, marker="o", ms=3)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("iteration (all starts)")
    axes[2].set_yscale("log")
    fig.tight_layout()
    return fig


def reprojection_pairs(
    volume: NDArray[np.float32],
    images: NDArray[np.float32],
    assignments: PoseTable,
    *,
    count: int = REPROJECTION_COUNT,
) -> tuple[
    NDArray[np.int64], NDArray[np.float32], NDArray[np.float32], NDArray[np.float64]
]:
    """Pair a sample of images with the map's reprojections at their best poses.

    The sample is ``count`` images spread evenly over the stack (first and
    last included), not the best-scoring ones, so that poorly explained
    images show up as often as they occur. An image's pose is its
    assignment row of highest weight; the map is projected at that rotation
    and translated by ``-shift`` so that it lines up with the image
    (CONVENTIONS: the image translated by ``+shift`` matches the projection).

    Parameters
    ----------
    volume : ndarray, shape (n, n, n), float32
        The map, working box.
    images : ndarray, shape (N, n, n), float32
        The images ``assignments`` refers to (``image_index`` into them).
    assignments : PoseTable
        Significant rows; several per image, none for some.
    count : int
        Most images shown (all of them when ``N <= count``).

    Returns
    -------
    indices : ndarray, shape (k,), int64
        The images shown, ascending; ``k = min(count, N)``.
    class_averages : ndarray, shape (k, n, n), float32
        ``images[indices]``.
    reprojections : ndarray, shape (k, n, n), float32
        The aligned reprojections; all NaN for an image without a
        significant row.
    correlations : ndarray, shape (k,), float64
        Pearson correlation over the whole box between each image and its
        reprojection of the final map (not the search's ``correlation``
        column, which was measured against the previous iteration's map);
        NaN without a significant row.
    """
    from sigcore.backends.projector import project
    from sigcore.simulate import translate_images

    images = np.asarray(images, dtype=np.float32)
    total = len(images)
    k = min(int(count), total)
    indices = np.unique(np.round(np.linspace(0, total - 1, k)).astype(np.int64))
    rows = np.full(len(indices), -1, dtype=np.int64)
    for slot, index in enumerate(indices):
        mine = np.flatnonzero(assignments.image_index == index)
        if len(mine):
            rows[slot] = mine[np.argmax(assignments.weights[mine])]
    shown = images[indices].copy()
    reprojections = np.full(shown.shape, np.nan, dtype=np.float32)
    correlations = np.full(len(indices), np.nan)
    posed = rows >= 0
    if posed.any():
        chosen = rows[posed]
        projections = project(volume, assignments.rotations[chosen], xp=np)
        aligned = translate_images(projections, -assignments.shifts[chosen])
        reprojections[posed] = aligned
        correlations[posed] = [
            _pearson(a, b) for a, b in zip(shown[posed], aligned, strict=True)
        ]
    return indices, shown, reprojections, correlations


def _pearson(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    a -= a.mean()
    b -= b.mean()
    denominator = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denominator) if denominator > 0 else 0.0


def _standardised(image: NDArray[np.float32]) -> NDArray[np.float32]:
    """Zero mean, unit standard deviation (only centred when flat)."""
    centred = image - image.mean()
    std = centred.std()
    return centred / std if std > 0 else centred


def _reprojections(plt: Any, result: ReconstructionResult) -> Any:
    indices, shown, reprojections, correlations = reprojection_pairs(
        result.volume, result.images, result.assignments
    )
    per_row = 4
    rows = -(-len(indices) // per_row)
    fig, axes = plt.subplots(
        rows, 2 * per_row, figsize=(2 * per_row * 1.3, rows * 1.65), squeeze=False
    )
    for ax in axes.ravel():
        ax.set_axis_off()
    for slot, index in enumerate(indices):
        left = axes[slot // per_row, 2 * (slot % per_row)]
        right = axes[slot // per_row, 2 * (slot % per_row) + 1]
        left.imshow(_standardised(shown[slot]), cmap="gray", origin="lower")
        left.set_title(f"image {index}", fontsize=7)
        right.set_title("reprojection", fontsize=7)
        # an image without a pose has an all-NaN reprojection: a blank panel
        right.imshow(_standardised(reprojections[slot]), cmap="gray", origin="lower")
        posed = not np.isnan(correlations[slot])
        right.text(
            0.5,
            -0.04 if posed else 0.5,
            f"c = {correlations[slot]:.3f}" if posed else "no significant\npose",
            transform=right.transAxes,
            ha="center",
            va="top" if posed else "center",
            fontsize=7,
        )
    fig.suptitle(
        "images and the final map reprojected at their best significant pose",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
