"""Array backends: ``numpy`` (reference), ``cpu`` (numba) and ``cupy`` (GPU).

Backend modules are cheap to import; numba and cupy load inside ``create()``.
Array code shared by all backends is written once against ``xp``
(:mod:`sigcore.backends.projector`, :mod:`sigcore.backends.polar`).
"""
