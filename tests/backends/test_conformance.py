"""Every available backend against the numpy reference (sigcore.testing)."""

from __future__ import annotations

import pytest

from sigcore.plugins import default_registry
from sigcore.testing import check_backend, small_case


@pytest.fixture(scope="module")
def case():
    return small_case()


@pytest.fixture(scope="module")
def reference():
    from sigcore.backends.numpy_backend import NumpyBackend

    return NumpyBackend.create()


@pytest.mark.parametrize("name", ["cpu", pytest.param("cupy", marks=pytest.mark.gpu)])
def test_backend_conforms_to_the_reference(name, case, reference):
    cls = default_registry().backends[name]
    if not cls.is_available():
        pytest.skip(f"backend {name} is not available here")
    report = check_backend(cls.create(), reference, case=case)
    print(report.summary())
    assert report.passed, report.summary()


def test_the_check_catches_a_wrong_backend(case, reference):
    """A backend with a sign error in its shifts must fail the check."""
    from sigcore.backends.cpu import CpuBackend

    class _WrongShift(CpuBackend):
        def search(self, images, references, params, metrics=()):
            result = super().search(images, references, params, metrics)
            return type(result)(
                correlation=result.correlation,
                psi=result.psi + 20.0,
                shifts=-result.shifts,
                mirror=result.mirror,
                metrics=result.metrics,
            )

    wrong = _WrongShift.create()
    report = check_backend(wrong, reference, case=case)
    assert not report.passed
    assert any("psi" in f for f in report.failures)
