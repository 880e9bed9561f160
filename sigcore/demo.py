"""The bundled example: a phantom simulated into class averages, made in code.

No map is shipped with sigcore: :func:`make_demo_images` renders the chiral
protein-like phantom of :mod:`sigcore.phantom` and simulates noisy class
averages of it with :mod:`sigcore.simulate`; :data:`DEMO_CONFIG` are the
options ``sigcore demo`` reconstructs them with (a coarser gallery, fewer
iterations and a working box cropped to the target resolution, so that it
finishes in about a minute on two cores).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from sigcore.config import ReconstructionConfig
from sigcore.imageset import ImageSet

__all__ = ["DEMO_BOX", "DEMO_CONFIG", "DEMO_PIXEL_SIZE", "make_demo_images"]

DEMO_BOX = 64
"""Box of the simulated class averages, pixels."""

DEMO_PIXEL_SIZE = 2.0
"""Å per pixel of the simulated class averages."""

DEMO_CONFIG = ReconstructionConfig(
    step=10.0,
    neighbourhood=20.0,
    iterations=12,
    max_resolution=12.0,
)
"""Options of ``sigcore demo``: 10° gallery, 12 iterations, 12 Å target."""


def make_demo_images(
    *, n_images: int = 80, seed: int = 1, snr: float = 3.0
) -> tuple[ImageSet, NDArray[np.float32]]:
    """Simulate the example's class averages and return them with the truth.

    Parameters
    ----------
    n_images : int
        Number of class averages.
    seed : int
        Seeds the poses, shifts and noise (the phantom itself is fixed).
    snr : float
        Signal-to-noise ratio of the images (see :func:`sigcore.simulate.simulate`).

    Returns
    -------
    images : ImageSet
        float32 ``(n_images, 64, 64)`` at 2 Å/px, with the true poses.
    truth : ndarray, shape (64, 64, 64), float32
        The phantom.
    """
    from sigcore.phantom import protein_phantom
    from sigcore.simulate import simulate

    phantom = protein_phantom(DEMO_BOX, seed=0)
    return simulate(
        phantom,
        n=n_images,
        snr=snr,
        pixel_size=DEMO_PIXEL_SIZE,
        seed=seed,
        lowpass_A=4 * DEMO_PIXEL_SIZE,
    )
