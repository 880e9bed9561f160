"""``sigcore project`` and ``sigcore backproject``: galleries and reconstructions.

Thin wrappers over :func:`sigcore.sampling.make_gallery`, the backends'
``project``/``reconstruct`` kernels and :mod:`sigcore.io`; every user error is
a :class:`~sigcore.errors.SigcoreError` that :func:`sigcore.cli.main` prints as
one line. Outputs are written atomically and never replace a file without
``--force``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from sigcore.cli import app

__all__ = ["backproject", "project"]

_STACK_SUFFIXES = (".mrcs", ".mrc")

Force = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
Backend = Annotated[
    str, typer.Option("--backend", help="Array backend (auto, numpy, cpu, cupy).")
]
Symmetry = Annotated[str, typer.Option("--sym", help="Point group (Xmipp name).")]


@app.command()
def project(
    volume: Annotated[Path, typer.Argument(help="3D map (.mrc).")],
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="Gallery stack (.mrcs; a .star of the angles is written beside "
            "it) or a metadata file (.star, .xmd; the stack goes to <stem>.mrcs).",
        ),
    ],
    step: Annotated[float, typer.Option("--step", help="Angular step, degrees.")] = 5.0,
    sym: Symmetry = "c1",
    min_tilt: Annotated[
        float, typer.Option("--min-tilt", help="Smallest tilt, degrees.")
    ] = 0.0,
    max_tilt: Annotated[
        float, typer.Option("--max-tilt", help="Largest tilt, degrees.")
    ] = 180.0,
    apix: Annotated[
        float | None,
        typer.Option("--apix", help="Voxel size in Å (overrides the map header)."),
    ] = None,
    backend: Backend = "auto",
    force: Force = False,
) -> None:
    """Project VOLUME over an even gallery of directions of the asymmetric unit."""
    from sigcore.errors import ConfigError
    from sigcore.imageset import ImageSet, PoseTable
    from sigcore.io import write_images
    from sigcore.io.atomic import check_writable
    from sigcore.io.mrc import read_volume, write_stack
    from sigcore.io.relion import write_star
    from sigcore.plugins import create_backend
    from sigcore.sampling import make_gallery

    stack_out = output.suffix.lower() in _STACK_SUFFIXES
    star = output.with_suffix(".star") if stack_out else output
    check_writable(output, overwrite=force)
    check_writable(star, overwrite=force)
    data, voxel = read_volume(volume)
    pixel_size = apix if apix is not None else voxel
    if pixel_size is not None and not pixel_size > 0:
        raise ConfigError(f"--apix must be positive, got {pixel_size}")
    gallery = make_gallery(step, sym, min_tilt=min_tilt, max_tilt=max_tilt)
    engine = create_backend(backend)
    images = engine.asnumpy(engine.project(engine.asarray(data), gallery.rotations))
    count = len(gallery)
    result = ImageSet(
        images=images,
        pixel_size=pixel_size,
        poses=PoseTable(
            image_index=np.arange(count),
            rotations=gallery.rotations,
            shifts=np.zeros((count, 2)),
            weights=np.ones(count),
        ),
        source=volume,
    )
    if stack_out:
        write_stack(output, images, pixel_size=pixel_size, overwrite=force)
        write_star(result, star, stack_path=output, overwrite=force)
    else:
        write_images(result, output, overwrite=force)
    typer.echo(
        f"{count} projections ({sym}, step {step:g} deg) -> {output}"
        + (f" + {star}" if stack_out else "")
    )


@app.command()
def backproject(
    images: Annotated[
        Path, typer.Argument(help="Images with poses (.star, .xmd, .cs, ...).")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Map to write (.mrc).")
    ],
    sym: Symmetry = "c1",
    apix: Annotated[
        float | None,
        typer.Option("--apix", help="Pixel size in Å (overrides the file)."),
    ] = None,
    backend: Backend = "auto",
    force: Force = False,
) -> None:
    """Reconstruct a map from IMAGES at the poses the metadata gives them."""
    from sigcore.errors import FormatError
    from sigcore.io import read_images
    from sigcore.io.atomic import check_writable
    from sigcore.io.mrc import write_volume
    from sigcore.plugins import create_backend
    from sigcore.symmetry import get_symmetry

    check_writable(output, overwrite=force)
    group = get_symmetry(sym)
    data = read_images(images, pixel_size=apix)
    if data.poses is None or len(data.poses) == 0:
        raise FormatError(images, "holds no poses (angles) to reconstruct from")
    engine = create_backend(backend)
    volume = engine.reconstruct(
        engine.asarray(data.images), data.poses, symmetry_ops=group.operators
    )
    write_volume(
        output, engine.asnumpy(volume), voxel_size=data.pixel_size, overwrite=force
    )
    typer.echo(
        f"{len(data.poses)} rows of {len(data)} images ({group.name}) -> {output}"
    )
