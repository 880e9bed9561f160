"""Example sigcore plugin: a Fourier-ring-weighted correlation metric.

The plugin module sigcore loads (through the ``sigcore`` entry point) is
:mod:`sigcore_example_metric.frc`; this package file only re-exports.
"""

from __future__ import annotations

from sigcore_example_metric.frc import FRCWeightedCorrelation

__all__ = ["FRCWeightedCorrelation", "__version__"]
__version__ = "0.1.0"
