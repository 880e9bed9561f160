"""Per-iteration checkpoints so that an interrupted run resumes exactly.

A checkpoint directory holds ``state.json`` (configuration, seed, which start
and iteration were completed, the random generator's state, the history so
far and the finished starts) and ``.npz`` files with the volume and the
assignments that produced it. Every file is written under a temporary name
and renamed; ``state.json`` is renamed last, so a run killed at any moment
leaves a consistent checkpoint (the previous one, or the new one). Nothing
here knows about the algorithm beyond these arrays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sigcore.errors import ConfigError, FormatError
from sigcore.imageset import PoseTable
from sigcore.io.atomic import atomic_path

__all__ = [
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "FinishedStart",
    "check_compatible",
    "load_checkpoint",
    "load_start",
    "save_checkpoint",
    "save_start",
]

CHECKPOINT_VERSION = 1
STATE = "state.json"


@dataclass(frozen=True, slots=True)
class FinishedStart:
    """A random start that ran all its iterations.

    Attributes
    ----------
    start : int
        0-based start number.
    agreement : float
        Mean best correlation of the images with the final map's projections.
    """

    start: int
    agreement: float


@dataclass(slots=True)
class Checkpoint:
    """Where a run stands after a completed iteration.

    Attributes
    ----------
    config : dict
        ``ReconstructionConfig.to_dict()`` of the run.
    seed : int
        The seed actually used.
    start : int
        Current start, 0-based.
    iteration : int
        Last completed iteration of that start, 0-based; -1 means only the
        starting volume exists.
    volume : ndarray, shape (n, n, n), float32
    assignments : PoseTable or None
        The weighted poses that produced ``volume`` (None for a start volume).
    rng_state : dict
        ``numpy.random.Generator.bit_generator.state`` of the start's generator.
    history : list of dict
        Per-iteration figures so far (all starts).
    finished : list of FinishedStart
    """

    config: dict[str, Any]
    seed: int
    start: int
    iteration: int
    volume: NDArray[np.float32]
    assignments: PoseTable | None
    rng_state: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    finished: list[FinishedStart] = field(default_factory=list)


def _pose_arrays(prefix: str, poses: PoseTable | None) -> dict[str, NDArray[Any]]:
    if poses is None:
        return {}
    arrays = {
        f"{prefix}image_index": poses.image_index,
        f"{prefix}rotations": poses.rotations,
        f"{prefix}shifts": poses.shifts,
        f"{prefix}weights": poses.weights,
    }
    for name, column in poses.extra.items():
        arrays[f"{prefix}extra_{name}"] = np.asarray(column)
    return arrays


def _poses_from(prefix: str, data: Any) -> PoseTable | None:
    if f"{prefix}image_index" not in data:
        return None
    extra_prefix = f"{prefix}extra_"
    return PoseTable(
        image_index=data[f"{prefix}image_index"],
        rotations=data[f"{prefix}rotations"],
        shifts=data[f"{prefix}shifts"],
        weights=data[f"{prefix}weights"],
        extra={
            k[len(extra_prefix) :]: np.asarray(data[k])
            for k in data.files
            if k.startswith(extra_prefix)
        },
    )


def _write_npz(path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    with atomic_path(path, overwrite=True) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def save_checkpoint(directory: str | Path, state: Checkpoint) -> None:
    """Write ``state`` atomically into ``directory`` (created if needed).

    Parameters
    ----------
    directory : str or Path
    state : Checkpoint
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"volume_s{state.start:02d}_it{state.iteration + 1:03d}.npz"
    arrays = {"volume": np.asarray(state.volume, dtype=np.float32)}
    arrays.update(_pose_arrays("poses_", state.assignments))
    _write_npz(directory / name, arrays)
    payload = {
        "version": CHECKPOINT_VERSION,
        "config": state.config,
        "seed": state.seed,
        "start": state.start,
        "iteration": state.iteration,
        "volume_file": name,
        "rng_state": state.rng_state,
        "history": state.history,
        "finished": [
            {"start": f.start, "agreement": f.agreement} for f in state.finished
        ],
    }
    with atomic_path(directory / STATE, overwrite=True) as tmp:
        tmp.write_text(json.dumps(payload, indent=1, default=_json_default))
    for old in directory.glob("volume_s*_it*.npz"):
        if old.name != name:
            old.unlink()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_checkpoint(directory: str | Path) -> Checkpoint | None:
    """Read the checkpoint in ``directory``; ``None`` when there is none.

    Raises
    ------
    FormatError
        When the files are unreadable or from another checkpoint version.
    """
    directory = Path(directory)
    state_path = directory / STATE
    if not state_path.exists():
        return None
    try:
        payload = json.loads(state_path.read_text())
    except (OSError, ValueError) as exc:
        raise FormatError(state_path, f"unreadable checkpoint: {exc}") from exc
    if payload.get("version") != CHECKPOINT_VERSION:
        raise FormatError(state_path, "checkpoint from another sigcore version")
    volume_path = directory / payload["volume_file"]
    if not volume_path.exists():
        raise FormatError(volume_path, "checkpoint volume missing")
    with np.load(volume_path) as data:
        volume = np.asarray(data["volume"], dtype=np.float32)
        poses = _poses_from("poses_", data)
    return Checkpoint(
        config=payload["config"],
        seed=int(payload["seed"]),
        start=int(payload["start"]),
        iteration=int(payload["iteration"]),
        volume=volume,
        assignments=poses,
        rng_state=payload["rng_state"],
        history=list(payload["history"]),
        finished=[
            FinishedStart(int(f["start"]), float(f["agreement"]))
            for f in payload["finished"]
        ],
    )


def save_start(
    directory: str | Path,
    start: int,
    volume: NDArray[np.float32],
    assignments: PoseTable,
) -> None:
    """Keep the final volume and assignments of a finished start."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {"volume": np.asarray(volume, dtype=np.float32)}
    arrays.update(_pose_arrays("poses_", assignments))
    _write_npz(directory / f"start_{start:02d}.npz", arrays)


def load_start(
    directory: str | Path, start: int
) -> tuple[NDArray[np.float32], PoseTable]:
    """Read what :func:`save_start` wrote for ``start``."""
    path = Path(directory) / f"start_{start:02d}.npz"
    if not path.exists():
        raise FormatError(path, "final volume of a finished start is missing")
    with np.load(path) as data:
        poses = _poses_from("poses_", data)
        volume = np.asarray(data["volume"], dtype=np.float32)
    if poses is None:
        raise FormatError(path, "no assignments stored")
    return volume, poses


def check_compatible(stored: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse to resume with options that change the result.

    Options that do not change the numbers (backend, threads, intermediates)
    may differ.

    Raises
    ------
    ConfigError
        Naming the first option that differs.
    """
    free = {"backend", "threads", "keep_intermediates"}
    for key in sorted(set(stored) | set(current)):
        if key in free:
            continue
        if stored.get(key) != current.get(key):
            raise ConfigError(
                f"--resume: option {key} was {stored.get(key)!r} in the "
                f"interrupted run, now {current.get(key)!r}"
            )
