"""diffmoog: a differentiable modular synthesizer with a sound-matching trainer."""
from diffmoog.chain import Chain
from diffmoog.errors import ConfigError, DiffmoogError, SpecError
from diffmoog.params import Param

__version__ = "0.1.0"
__all__ = ["Chain", "ConfigError", "DiffmoogError", "Param", "SpecError", "__version__"]
