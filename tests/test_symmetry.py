"""Tests for sigcore.symmetry: group orders, closure, axis orientations, errors."""

from __future__ import annotations

import numpy as np
import pytest

from sigcore.errors import ConfigError
from sigcore.symmetry import SymmetryGroup, get_symmetry, symmetry_mates

PHI = (1 + 5**0.5) / 2

ORDERS = {
    "c1": 1,
    "c2": 2,
    "c7": 7,
    "c12": 12,
    "ci": 2,
    "cs": 2,
    "c3v": 6,
    "c4h": 8,
    "s4": 4,
    "s6": 6,
    "d1": 2,
    "d2": 4,
    "d7": 14,
    "d3v": 12,
    "d4v": 16,
    "d5h": 20,
    "t": 12,
    "td": 24,
    "th": 24,
    "o": 24,
    "oh": 48,
    "i": 60,
    "i1": 60,
    "i2": 60,
    "i3": 60,
    "i4": 60,
    "ih": 120,
    "i1h": 120,
    "i2h": 120,
    "i3h": 120,
    "i4h": 120,
}
PROPER = {
    "c1",
    "c2",
    "c7",
    "c12",
    "d1",
    "d2",
    "d7",
    "t",
    "o",
    "i",
    "i1",
    "i2",
    "i3",
    "i4",
}


def contains(ops: np.ndarray, m: np.ndarray, tol: float = 1e-9) -> bool:
    return bool(np.abs(ops - m).max(axis=(1, 2)).min() < tol)


def same_set(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) == len(b) and all(contains(b, m) for m in a)


def fold_axes(group: SymmetryGroup, fold: int) -> np.ndarray:
    """Distinct unit axes (either sign) of the rotations by 360/fold degrees."""
    out: list[np.ndarray] = []
    for m in group.rotations:
        angle = np.degrees(np.arccos(np.clip((np.trace(m) - 1) / 2, -1, 1)))
        if abs(angle - 360.0 / fold) > 1e-6:
            continue
        if fold == 2:  # (m + I) / 2 = n n^T
            nn = (m + np.eye(3)) / 2
            axis = nn[:, np.argmax(np.diag(nn))]
        else:
            axis = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])
        axis = axis / np.linalg.norm(axis)
        if not any(abs(axis @ a) > 1 - 1e-9 for a in out):
            out.append(axis)
    return np.array(out).reshape(-1, 3)


def has_axis(group: SymmetryGroup, fold: int, axis) -> bool:
    a = np.asarray(axis, dtype=float)
    a /= np.linalg.norm(a)
    axes = fold_axes(group, fold)
    return bool(len(axes)) and bool(np.max(np.abs(axes @ a)) > 1 - 1e-8)


@pytest.mark.parametrize(("name", "order"), ORDERS.items())
def test_order_closure_and_orthogonality(name, order):
    g = get_symmetry(name)
    ops = g.operators
    assert g.order == order
    assert ops.shape == (order, 3, 3)
    assert ops.dtype == np.float64
    np.testing.assert_array_equal(ops[0], np.eye(3))
    np.testing.assert_allclose(
        ops @ ops.transpose(0, 2, 1), np.broadcast_to(np.eye(3), ops.shape), atol=1e-12
    )
    # Closure: every product and every inverse is in the set; no duplicates.
    products = np.einsum("aij,bjk->abik", ops, ops).reshape(-1, 3, 3)
    assert all(contains(ops, p) for p in products)
    assert all(contains(ops, m.T) for m in ops)
    gaps = np.abs(ops[:, None] - ops[None]).max(axis=(2, 3)) + np.eye(order) * 10
    assert gaps.min() > 1e-3
    assert g.is_proper == (name in PROPER)
    assert len(g.rotations) == (order if g.is_proper else order // 2)


def test_operators_are_read_only_and_cached():
    g = get_symmetry("D7")
    assert g is get_symmetry("d7")
    assert g is get_symmetry(" d7 ")
    assert get_symmetry(g) is g
    assert g.name == "d7"
    with pytest.raises(ValueError, match="read-only"):
        g.operators[0, 0, 0] = 2.0


def test_i_is_i2_and_settings_differ():
    assert same_set(get_symmetry("i").operators, get_symmetry("i2").operators)
    assert same_set(get_symmetry("ih").operators, get_symmetry("i2h").operators)
    for a, b in [("i1", "i2"), ("i2", "i3"), ("i3", "i4"), ("i1", "i4")]:
        assert not same_set(get_symmetry(a).operators, get_symmetry(b).operators)


@pytest.mark.parametrize("n", [1, 2, 5, 7, 12])
def test_cyclic_and_dihedral_axes(n):
    c = get_symmetry(f"c{n}")
    # Every cN operator is a rotation about Z.
    np.testing.assert_allclose(
        c.operators[:, :, 2], np.tile([0, 0, 1.0], (n, 1)), atol=1e-12
    )
    if n > 1:
        assert has_axis(c, n, [0, 0, 1])
    d = get_symmetry(f"d{n}")
    assert has_axis(d, 2, [1, 0, 0])
    assert same_set(c.operators, d.operators[np.abs(d.operators[:, 2, 2] - 1) < 1e-9])


def test_mirror_groups_planes():
    assert contains(get_symmetry("ci").operators, -np.eye(3))
    assert contains(get_symmetry("cs").operators, np.diag([1.0, 1, -1]))
    assert contains(get_symmetry("c3v").operators, np.diag([1.0, -1, 1]))
    assert contains(get_symmetry("c3h").operators, np.diag([1.0, 1, -1]))
    assert contains(get_symmetry("d3v").operators, np.diag([-1.0, 1, 1]))
    assert contains(get_symmetry("d3h").operators, np.diag([1.0, 1, -1]))
    # S4: the 90-degree rotoreflection, but neither the 90-degree rotation nor -I.
    s4 = get_symmetry("s4").operators
    rz90 = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert contains(s4, np.diag([1.0, 1, -1]) @ rz90)
    assert not contains(s4, rz90)
    assert not contains(s4, -np.eye(3))
    # Td has no inversion (its improper elements are mirrors and S4s); Th and Oh do.
    assert not contains(get_symmetry("td").operators, -np.eye(3))
    assert contains(get_symmetry("th").operators, -np.eye(3))
    assert contains(get_symmetry("oh").operators, -np.eye(3))
    for name in ["td", "th"]:
        assert same_set(get_symmetry(name).rotations, get_symmetry("t").operators)
    assert same_set(get_symmetry("oh").rotations, get_symmetry("o").operators)
    for s in "1234":
        assert same_set(
            get_symmetry(f"i{s}h").rotations, get_symmetry(f"i{s}").operators
        )


def test_tetrahedral_axes():
    t = get_symmetry("t")
    assert has_axis(t, 3, [0, 0, 1])
    assert has_axis(t, 2, [0, 0.816496, 0.577350])
    twos = fold_axes(t, 2)
    assert len(twos) == 3
    np.testing.assert_allclose(np.abs(twos @ twos.T), np.eye(3), atol=1e-9)
    assert len(fold_axes(t, 3)) == 4


def test_octahedral_axes():
    o = get_symmetry("o")
    for axis in np.eye(3):
        assert has_axis(o, 4, axis)
    assert has_axis(o, 3, [1, 1, 1])
    assert len(fold_axes(o, 3)) == 4
    assert len(fold_axes(o, 2)) == 9  # 6 two-folds + the squares of the 3 four-folds


# Generator axes as Xmipp writes them (symmetries.cpp, fillSymmetryClass): an
# independent check that our settings are Xmipp's.
XMIPP_AXES = {
    "i1": {
        2: (1, 0, 0),
        5: (0.85065080702670, 0, -0.5257311142635),
        3: (0.9341723640, 0.3568220765, 0),
    },
    "i2": {
        2: (0, 0, 1),
        5: (0.525731114, 0, 0.850650807),
        3: (0, 0.356822076, 0.934172364),
    },
    "i3": {
        2: (-0.5257311143, 0, 0.8506508070),
        5: (0, 0, 1),
        3: (-0.4911234778630044, 0.3568220764705179, 0.7946544753759428),
    },
    "i4": {
        2: (0.5257311143, 0, 0.8506508070),
        5: (0.8944271932547096, 0, 0.4472135909903704),
        3: (0.4911234778630044, 0.3568220764705179, 0.7946544753759428),
    },
}


@pytest.mark.parametrize("name", ["i1", "i2", "i3", "i4"])
def test_icosahedral_axis_counts_and_xmipp_generators(name):
    g = get_symmetry(name)
    assert (len(fold_axes(g, 2)), len(fold_axes(g, 3)), len(fold_axes(g, 5))) == (
        15,
        10,
        6,
    )
    for fold, axis in XMIPP_AXES[name].items():
        a = np.asarray(axis) / np.linalg.norm(axis)
        assert np.max(np.abs(fold_axes(g, fold) @ a)) > 1 - 1e-7, (name, fold)


def front_most_fives(name: str) -> np.ndarray:
    """5-fold axes (pointing to +z) closest to +z, excluding an axis on z itself."""
    axes = fold_axes(get_symmetry(name), 5)
    axes = axes * np.where(axes[:, 2] < 0, -1.0, 1.0)[:, None]
    axes = axes[axes[:, 2] < 1 - 1e-9]
    return axes[axes[:, 2] > axes[:, 2].max() - 1e-9]


def test_i1_and_i2_settings():
    for name, zero_col in [("i1", 0), ("i2", 1)]:
        g = get_symmetry(name)
        for axis in np.eye(3):
            assert has_axis(g, 2, axis)
        fives = front_most_fives(name)
        assert len(fives) == 2
        np.testing.assert_allclose(fives[:, zero_col], 0.0, atol=1e-12)
        np.testing.assert_allclose(fives[:, 2], PHI / np.sqrt(1 + PHI**2))
    assert has_axis(get_symmetry("i1"), 5, [0, 1, PHI])
    assert has_axis(get_symmetry("i2"), 5, [1, 0, PHI])


@pytest.mark.parametrize(("name", "sign"), [("i3", -1.0), ("i4", 1.0)])
def test_i3_and_i4_settings(name, sign):
    g = get_symmetry(name)
    assert has_axis(g, 5, [0, 0, 1])
    assert has_axis(g, 2, [0, 1, 0])
    fives = front_most_fives(name)
    assert len(fives) == 5  # the ring at 63.43 degrees around the Z 5-fold
    in_xz = fives[np.abs(fives[:, 1]) < 1e-9]
    assert len(in_xz) == 1
    assert np.sign(in_xz[0, 0]) == sign
    np.testing.assert_allclose(in_xz[0, 2], 1 / np.sqrt(5), atol=1e-12)


def test_symmetry_mates_and_invariance_of_symmetric_function():
    g = get_symmetry("o")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 3))

    def density(r: np.ndarray) -> np.ndarray:
        # A sum of Gaussians at every symmetry mate of three centres.
        mates = symmetry_mates(centres, g).reshape(-1, 3)
        return np.exp(-((r[..., None, :] - mates) ** 2).sum(-1)).sum(-1)

    r = rng.normal(size=(50, 3))
    for op in g.operators:
        np.testing.assert_allclose(density(r @ op.T), density(r), rtol=1e-12)
    mates = symmetry_mates(r, g)
    assert mates.shape == (24, 50, 3)
    np.testing.assert_allclose(mates[0], r)


@pytest.mark.parametrize(
    "bad", ["i5", "I5H", "c0", "x7", "", "c100", "s3", "s4v", "d0h", "q"]
)
def test_unknown_or_unsupported_names_raise(bad):
    with pytest.raises(ConfigError, match="symmetry"):
        get_symmetry(bad)


# --------------------------------------------------------------------------- #
# sigcore symmetry NAME [--json]


def run_cli(argv: list[str]) -> int:
    from sigcore.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_json_round_trips_operators(capsys):
    import json

    from sigcore.geometry import euler_to_matrix

    assert run_cli(["symmetry", "I3", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "i3"
    assert info["order"] == 60
    assert info["proper"] is True
    matrices = np.array([op["matrix"] for op in info["operators"]])
    assert same_set(matrices, get_symmetry("i3").operators)
    # The printed Euler angles rebuild the printed matrices.
    angles = np.array([op["euler"] for op in info["operators"]])
    np.testing.assert_allclose(euler_to_matrix(angles), matrices, atol=1e-8)


def test_cli_json_improper_operators(capsys):
    import json

    from sigcore.geometry import euler_to_matrix

    assert run_cli(["symmetry", "d3h", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["order"] == 12
    assert info["proper"] is False
    for op in info["operators"]:
        sign = -1.0 if op["improper"] else 1.0
        np.testing.assert_allclose(
            sign * euler_to_matrix(op["euler"]), op["matrix"], atol=1e-8
        )
    assert sum(op["improper"] for op in info["operators"]) == 6


def test_cli_plain_output(capsys):
    assert run_cli(["symmetry", "c4"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "symmetry c4: order 4 (rotations only)"
    assert out.count("operator ") == 4
    assert "operator 1: rot 0.0000  tilt 0.0000  psi -90.0000" in out
    assert "     0.000000   1.000000   0.000000" in out


def test_cli_unknown_group_is_one_line_error(capsys):
    assert run_cli(["symmetry", "i5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sigcore: error: symmetry 'i5'")
    assert len(err.strip().splitlines()) == 1
