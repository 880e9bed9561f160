"""The iteration loop: starts, hooks, checkpoints and resume, mirrors, schedule.

Most tests drive the loop with ``_ZeroSearch``, a tiny backend whose "search"
only compares images and projections as they are (psi = 0, no shift): the
real projector and reconstructor, a trivially checkable score table, and fast.
The last tests use the ``numpy`` reference backend once its search exists.
"""

from __future__ import annotations

import numpy as np
import pytest

from sigcore.alignment import SearchResult
from sigcore.checkpoint import load_checkpoint
from sigcore.config import ReconstructionConfig
from sigcore.errors import ConfigError, SigcoreError
from sigcore.hookspecs import hookimpl
from sigcore.plugins import get_plugin_manager
from sigcore.preprocess import prepare_images
from sigcore.scheduler import fisher_pixels, needs_mirror, random_start, run
from sigcore.testing import UnalignedBackend, blob_stack

BOX = 24


class _ZeroSearch(UnalignedBackend):
    name = "zero-search"
    with_imed = True


def _images(n=12, seed=0):
    return prepare_images(blob_stack(n, BOX, seed=seed, offset=3.0), pixel_size=3.0)


CFG = ReconstructionConfig(step=20, neighbourhood=40, iterations=3, seed=5)


def test_run_produces_history_and_assignments():
    prepared = _images()
    result = run(prepared, CFG, backend=_ZeroSearch(), seed=5)
    assert result.volume.shape == (BOX, BOX, BOX)
    assert result.volume.dtype == np.float32
    assert [h.iteration for h in result.history] == [0, 1, 2]
    # the schedule reaches alphaF on the last iteration
    assert [h.significance for h in result.history] == [80.0, 89.75, 99.5]
    last = result.history[-1]
    assert last.significant_pairs == len(result.assignments)
    assert (result.assignments.weights > 0).all()
    assert set(last.timings) >= {"project", "search", "significance", "reconstruct"}
    assert result.assignments.extra["direction"].max() < result.run.gallery_size


def test_same_seed_same_map_other_seed_other_map():
    prepared = _images()
    a = run(prepared, CFG, backend=_ZeroSearch(), seed=5).volume
    b = run(prepared, CFG, backend=_ZeroSearch(), seed=5).volume
    c = run(prepared, CFG, backend=_ZeroSearch(), seed=6).volume
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_random_start_is_seeded_and_symmetric():
    from sigcore.symmetry import get_symmetry
    from sigcore.volume import rotate_volume

    prepared = _images()
    ops = get_symmetry("c4").operators
    backend = _ZeroSearch()
    v1 = random_start(
        prepared.images, backend, np.random.default_rng(1), symmetry_ops=ops
    )
    v2 = random_start(
        prepared.images, backend, np.random.default_rng(1), symmetry_ops=ops
    )
    np.testing.assert_array_equal(v1, v2)
    # a quarter turn about z leaves the c4 start unchanged (interpolation aside)
    turned = rotate_volume(v1, ops[1].T, order=1)
    core = np.s_[4:-4, 4:-4, 4:-4]
    corr = np.corrcoef(turned[core].ravel(), v1[core].ravel())[0, 1]
    assert corr > 0.95


class _Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def sigcore_run_start(self, run):
        self.events.append(("start", run.gallery_size))

    @hookimpl
    def sigcore_iteration_end(self, run, iteration, state):
        self.events.append(("iteration", iteration, state.significant_pairs))


def test_hooks_and_reporter_fire_once_per_iteration():
    recorder = _Recorder()
    pm = get_plugin_manager(autoload=False, extra=[recorder])
    seen = []
    result = run(
        _images(), CFG, backend=_ZeroSearch(), seed=5, pm=pm, reporter=seen.append
    )
    assert recorder.events[0] == ("start", result.run.gallery_size)
    assert [e[1] for e in recorder.events[1:]] == [0, 1, 2]
    assert [s.iteration for s in seen] == [0, 1, 2]


def test_resume_after_interruption_gives_the_same_map(tmp_path):
    prepared = _images()
    full = run(prepared, CFG, backend=_ZeroSearch(), seed=5)

    class _Killed(Exception):
        pass

    def kill_after_two(stats):
        if stats.iteration == 1:
            raise _Killed

    ckpt = tmp_path / "checkpoint"
    with pytest.raises(_Killed):
        run(
            prepared,
            CFG,
            backend=_ZeroSearch(),
            seed=5,
            checkpoint_dir=ckpt,
            reporter=kill_after_two,
        )
    state = load_checkpoint(ckpt)
    assert state.iteration == 1
    assert len(state.history) == 2
    backend = _ZeroSearch()
    resumed = run(
        prepared, CFG, backend=backend, seed=5, checkpoint_dir=ckpt, resume=True
    )
    assert backend.calls == 1  # only the third iteration ran
    np.testing.assert_allclose(resumed.volume, full.volume, atol=1e-6)
    assert [h.iteration for h in resumed.history] == [0, 1, 2]


def test_resume_refuses_changed_options(tmp_path):
    prepared = _images()
    ckpt = tmp_path / "checkpoint"
    run(prepared, CFG, backend=_ZeroSearch(), seed=5, checkpoint_dir=ckpt)
    with pytest.raises(ConfigError, match="option alpha0"):
        run(
            prepared,
            CFG.replace(alpha0=85),
            backend=_ZeroSearch(),
            seed=5,
            checkpoint_dir=ckpt,
            resume=True,
        )
    with pytest.raises(SigcoreError, match="seed 5"):
        run(
            prepared,
            CFG,
            backend=_ZeroSearch(),
            seed=6,
            checkpoint_dir=ckpt,
            resume=True,
        )


def test_several_starts_keep_the_best_agreement(tmp_path):
    prepared = _images()
    cfg = CFG.replace(starts=3, iterations=2)
    result = run(prepared, cfg, backend=_ZeroSearch(), seed=5, checkpoint_dir=tmp_path)
    assert sorted(result.agreements) == [0, 1, 2]
    assert result.best_start == max(result.agreements, key=result.agreements.get)
    assert len(result.history) == 6
    # each start is the same as a one-start run with that start's generator
    assert len({round(v, 6) for v in result.agreements.values()}) > 1


def test_reference_start_uses_the_reference():
    prepared = _images()
    ref = np.zeros((BOX,) * 3, np.float32)
    ref[8:16, 8:16, 8:16] = 1.0
    backend = _ZeroSearch()
    r1 = run(
        prepared,
        CFG.replace(iterations=1, seed=None),
        backend=backend,
        seed=1,
        reference=ref,
    )
    r2 = run(
        prepared,
        CFG.replace(iterations=1, seed=None),
        backend=backend,
        seed=2,
        reference=ref,
    )
    # with a reference nothing is random
    np.testing.assert_array_equal(r1.volume, r2.volume)


def _two_iterations_with_intermediates(folder):
    run(
        _images(),
        CFG.replace(iterations=2),
        backend=_ZeroSearch(),
        seed=5,
        intermediates_dir=folder,
    )


def test_intermediates_are_written(tmp_path):
    _two_iterations_with_intermediates(tmp_path / "it")
    names = sorted(p.name for p in (tmp_path / "it").iterdir())
    assert names == ["volume_s00_it001.mrc", "volume_s00_it002.mrc"]


def test_mirror_only_where_the_gallery_lacks_opposite_views():
    assert not needs_mirror(ReconstructionConfig(), proper=True)
    assert needs_mirror(ReconstructionConfig(max_tilt=90), proper=True)
    assert needs_mirror(ReconstructionConfig(), proper=False)
    assert not needs_mirror(
        ReconstructionConfig(max_tilt=90, compat="xmipp"), proper=True
    )


def test_fisher_pixels_counts_the_disc():
    # 4x4 box, centre (2, 2), radius 2: offsets -2..1 per axis; inside are the
    # 9 pixels with |dx|, |dy| <= 1 plus (-2, 0) and (0, -2): 11
    assert fisher_pixels(4) == 11
    assert 0.7 * 64 * 64 < fisher_pixels(64) < 0.8 * 64 * 64  # ~ pi / 4
    # half the band: a quarter of the independent samples
    assert fisher_pixels(64, 0.25) == round(fisher_pixels(64) / 4)


def test_imed_required_from_the_search():
    class _NoImed(_ZeroSearch):
        def search(self, *a, **k):
            r = super().search(*a, **k)
            return SearchResult(r.correlation, r.psi, r.shifts, r.mirror, {})

    with pytest.raises(SigcoreError, match="IMED"):
        run(_images(), CFG, backend=_NoImed(), seed=5)
    run(_images(), CFG.replace(imed=False), backend=_NoImed(), seed=5)


def test_compat_xmipp_schedule_and_symmetry_factor():
    # Xmipp divides by T: 80, 86.5, 93; c3 factor |S| - 1 = 2 -> alpha 0.4 first
    cfg = CFG.replace(compat="xmipp", symmetry="c3")
    result = run(_images(), cfg, backend=_ZeroSearch(), seed=5)
    assert [h.significance for h in result.history] == [80.0, 86.5, 93.0]
    assert result.history[0].alpha == pytest.approx(0.4)
    assert not result.run.mirror
    # sigcore's factor for c3 is 3: 0.2 * 3 = 0.6
    ours = run(_images(), CFG.replace(symmetry="c3"), backend=_ZeroSearch(), seed=5)
    assert ours.history[0].alpha == pytest.approx(0.6)


def test_intermediate_volumes_are_band_limited_and_the_last_is_not(tmp_path):
    """Intermediate maps carry only the search band; the final map is full band."""
    from sigcore.io.mrc import read_volume

    _two_iterations_with_intermediates(tmp_path / "it")

    def high_fraction(volume):
        spectrum = np.abs(np.fft.fftn(volume)) ** 2
        k = np.fft.fftfreq(BOX)
        kz, ky, kx = np.meshgrid(k, k, k, indexing="ij")
        high = np.sqrt(kx**2 + ky**2 + kz**2) > 0.4
        return spectrum[high].sum() / spectrum.sum()

    first, _ = read_volume(tmp_path / "it" / "volume_s00_it001.mrc")
    last, _ = read_volume(tmp_path / "it" / "volume_s00_it002.mrc")
    assert high_fraction(last) > 100 * high_fraction(first)
