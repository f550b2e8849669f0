"""diffmoog: a differentiable modular synthesizer with a sound-matching trainer."""
import os
import sys

# Before torch loads its OpenMP runtime: idle OpenMP threads then sleep instead of spinning
# on the cores that the native synth kernels' threads need (on 2 cores, 1.5x faster renders
# and create-data; see README). Has no effect if torch was imported first or it is set.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from diffmoog.chain import Chain  # noqa: E402
from diffmoog.errors import ConfigError, DiffmoogError, SpecError  # noqa: E402
from diffmoog.params import Param  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Chain", "ConfigError", "DiffmoogError", "Param", "SpecError", "__version__"]
