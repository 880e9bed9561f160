"""``sigcore symmetry NAME``: print a point group's operators.

A thin wrapper over :func:`sigcore.symmetry.get_symmetry`, so users can compare
sigcore's operators with other packages (e.g. ``relion_refine --sym X
--print_symmetry_ops``). Plain output lists each operator as a 3x3 matrix and
as Euler angles; ``--json`` prints one object on stdout.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
import typer

from sigcore.cli import app

__all__ = ["symmetry"]


def _describe(name: str) -> dict[str, Any]:
    from sigcore.geometry import matrix_to_euler
    from sigcore.symmetry import get_symmetry

    group = get_symmetry(name)
    ops = group.operators
    signs = np.sign(np.linalg.det(ops))
    # Improper operators are -R with R proper; their angles are those of R.
    angles = matrix_to_euler(signs[:, None, None] * ops)
    return {
        "name": group.name,
        "order": group.order,
        "proper": group.is_proper,
        "operators": [
            {
                "index": k,
                "improper": bool(sign < 0),
                "matrix": np.round(m, 12).tolist(),
                "euler": np.round(a, 9).tolist(),
            }
            for k, (m, a, sign) in enumerate(zip(ops, angles, signs, strict=True))
        ],
    }


@app.command()
def symmetry(
    name: Annotated[str, typer.Argument(help="Xmipp symmetry name, e.g. c1, d7, i2.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the operators as JSON on stdout.")
    ] = False,
) -> None:
    """Print the order and every operator L of a point group (V(L r) = V(r)).

    Each operator is shown as its matrix (acting on map coordinates x, y, z)
    and as Euler angles (rot, tilt, psi) in degrees, RELION/Xmipp ZYZ sense.
    An improper operator (with a mirror) is -R for a rotation R; its angles are
    those of R.
    """
    info = _describe(name)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    kind = "rotations only" if info["proper"] else "with mirrors/inversion"
    typer.echo(f"symmetry {info['name']}: order {info['order']} ({kind})")
    for op in info["operators"]:
        rot, tilt, psi = op["euler"]
        sign = "-R, " if op["improper"] else ""
        typer.echo(
            f"operator {op['index']}: {sign}rot {rot:.4f}  tilt {tilt:.4f}  "
            f"psi {psi:.4f}"
        )
        for row in op["matrix"]:
            typer.echo("   " + " ".join(f"{v + 0.0:10.6f}" for v in row))
