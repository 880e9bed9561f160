"""``sigcore info`` and ``sigcore convert``: inspect and convert files.

Thin wrappers over :mod:`sigcore.io`; every user error is a
:class:`~sigcore.errors.FormatError` that :func:`sigcore.cli.main` prints as
one line.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from sigcore.cli import app

__all__ = ["convert", "describe", "info"]


def describe(path: str | Path) -> dict[str, Any]:
    """Summarise a file: format, kind, shape, pixel size, images, columns, poses.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        JSON-serialisable summary.
    """
    from sigcore.io import open_reader, validate_images

    reader = open_reader(path)
    data = reader.read(Path(path))
    validate_images(data, path, allow_volume=True)
    kind = data.metadata.get("kind", "stack")
    summary: dict[str, Any] = {
        "file": str(path),
        "format": reader.name,
        "kind": kind,
        "shape": list(data.images.shape),
        "pixel_size": data.pixel_size,
        "images": 0 if kind == "volume" else len(data),
        "poses": data.poses is not None,
        "pose_rows": 0 if data.poses is None else len(data.poses),
        "columns": list(data.metadata.get("columns", [])),
    }
    return summary


@app.command()
def info(
    file: Annotated[str, typer.Argument(help="Image stack, volume or metadata file.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON.")
    ] = False,
) -> None:
    """Describe FILE: kind, shape, pixel size, images, metadata columns, poses."""
    summary = describe(file)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    apix = summary["pixel_size"]
    lines = [
        f"file        {summary['file']}",
        f"format      {summary['format']}",
        f"kind        {summary['kind']}",
        f"shape       {' x '.join(str(s) for s in summary['shape'])}",
        f"pixel size  {'unknown' if apix is None else f'{apix:g} Å'}",
    ]
    if summary["kind"] != "volume":
        lines.append(f"images      {summary['images']}")
        poses = summary["pose_rows"]
        lines.append(
            f"poses       {f'yes ({poses} rows)' if summary['poses'] else 'no'}"
        )
    if summary["columns"]:
        lines.append(f"columns     {' '.join(summary['columns'])}")
    typer.echo("\n".join(lines))


@app.command()
def convert(
    src: Annotated[str, typer.Argument(help="Input file (any readable format).")],
    dst: Annotated[
        str, typer.Argument(help="Output file (.mrcs, .mrc, .star or .xmd).")
    ],
    apix: Annotated[
        float | None,
        typer.Option("--apix", help="Pixel size in Å, overriding the input's."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite existing outputs.")
    ] = False,
) -> None:
    """Convert SRC to DST; metadata files carry their image stacks along."""
    from sigcore.errors import FormatError
    from sigcore.io import open_reader, validate_images, write_images

    data = open_reader(src).read(Path(src))
    validate_images(data, src, allow_volume=True)
    if apix is not None:
        if not apix > 0:
            raise FormatError(src, f"--apix must be positive, not {apix}")
        data = dataclasses.replace(data, pixel_size=apix)
    if data.metadata.get("kind") == "volume":
        if Path(dst).suffix.lower() != ".mrc":
            raise FormatError(dst, "a volume can only be written as .mrc")
        from sigcore.io.mrc import write_volume

        write_volume(dst, data.images, voxel_size=data.pixel_size, overwrite=force)
    else:
        write_images(data, dst, overwrite=force)
        if data.poses is not None and Path(dst).suffix.lower() in {".mrc", ".mrcs"}:
            typer.echo(
                f"note: {dst} holds the images only; poses were not kept", err=True
            )
    typer.echo(f"wrote {dst}", err=True)
