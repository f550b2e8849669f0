"""The module registry: YAML `module:` names -> Module classes."""
from diffmoog.modules.adsr import ADSR
from diffmoog.modules.base import Module, RenderContext
from diffmoog.modules.filter import Filter
from diffmoog.modules.fm_oscillator import FMOscillator
from diffmoog.modules.lfo import LFO
from diffmoog.modules.mixer import Mixer
from diffmoog.modules.morph_oscillator import MorphOscillator
from diffmoog.modules.noise import Noise
from diffmoog.modules.oscillator import Oscillator
from diffmoog.modules.pm_oscillator import PMOscillator
from diffmoog.modules.tremolo import Tremolo
from diffmoog.modules.vca import VCA

MODULES: dict[str, type[Module]] = {m.type_name: m for m in (
    Oscillator, MorphOscillator, FMOscillator, PMOscillator, LFO, Noise, ADSR, VCA, Mixer,
    Tremolo, Filter)}

__all__ = ["MODULES", "Module", "RenderContext"]
