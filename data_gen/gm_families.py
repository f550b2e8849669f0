"""General MIDI programs and drum kits -> NSynth's instrument families and sources.

NSynth labels every instrument with one of 11 families and one of 3 sources (acoustic:
a recorded instrument; electronic: a recorded electric instrument; synthetic: made by a
synthesizer). A General MIDI SoundFont names its presets by GM program, so the mapping is
one table, written out program by program so that every choice can be read and argued.

Choices where GM's groups and NSynth's families disagree:
- harp (46) and koto (107) are plucked strings without a neck: `string`; sitar, banjo and
  shamisen (104-106) are necked lutes: `guitar`.
- timpani (47) and kalimba (108) are pitched and struck: `mallet`.
- the accordions (21, 23) are keyboard-played free reeds that sound like the reed organ (20):
  `organ`; the harmonica (22) is a mouth-blown free reed: `reed`.
- synth pads (88-95) and synth effects (96-103) are sustained synthesized tones: NSynth puts
  such sounds under `synth_lead` (its `keyboard` family is pianos), so they go there, except
  the choir pad (91), a synthetic voice like synth voice (54): `vocal`.
None means "no NSynth family", and such presets are skipped (counted in the summary): the
orchestra hit (55, a chord stab), the unpitched percussion 115-119 and the sound effects 120-127.
(Variation banks follow their program: bank 8's "Castanets" at 115 is skipped too.)

Drum kits (bank 128, GM's channel 10) have no NSynth family either. They are kept under the
family name "drum" with family id -1 (as in the shared NSynth-format fixture), which the NSynth
loader and `--from-nsynth` read unchanged; `--families drum` selects them.
"""
from __future__ import annotations

from diffmoog.data.nsynth_meta import FAMILIES, SOURCES

DRUM_FAMILY, DRUM_FAMILY_ID = "drum", -1
DRUM_BANK = 128  # where SoundFonts keep the GM percussion kits
DRUM_KEYS = range(35, 82)  # GM's percussion key map: Acoustic Bass Drum .. Open Triangle

A, E, S = "acoustic", "electronic", "synthetic"

# program: (GM name, NSynth family or None, source)
GM_PROGRAMS = {
    0: ("Acoustic Grand Piano", "keyboard", A), 1: ("Bright Acoustic Piano", "keyboard", A),
    2: ("Electric Grand Piano", "keyboard", E), 3: ("Honky-tonk Piano", "keyboard", A),
    4: ("Electric Piano 1", "keyboard", E), 5: ("Electric Piano 2", "keyboard", S),  # the DX7 FM piano
    6: ("Harpsichord", "keyboard", A), 7: ("Clavinet", "keyboard", E),
    8: ("Celesta", "mallet", A), 9: ("Glockenspiel", "mallet", A), 10: ("Music Box", "mallet", A),
    11: ("Vibraphone", "mallet", A), 12: ("Marimba", "mallet", A), 13: ("Xylophone", "mallet", A),
    14: ("Tubular Bells", "mallet", A), 15: ("Dulcimer", "mallet", A),
    16: ("Drawbar Organ", "organ", E), 17: ("Percussive Organ", "organ", E), 18: ("Rock Organ", "organ", E),
    19: ("Church Organ", "organ", A), 20: ("Reed Organ", "organ", A), 21: ("Accordion", "organ", A),
    22: ("Harmonica", "reed", A), 23: ("Tango Accordion", "organ", A),
    24: ("Acoustic Guitar (nylon)", "guitar", A), 25: ("Acoustic Guitar (steel)", "guitar", A),
    26: ("Electric Guitar (jazz)", "guitar", E), 27: ("Electric Guitar (clean)", "guitar", E),
    28: ("Electric Guitar (muted)", "guitar", E), 29: ("Overdriven Guitar", "guitar", E),
    30: ("Distortion Guitar", "guitar", E), 31: ("Guitar Harmonics", "guitar", E),
    32: ("Acoustic Bass", "bass", A), 33: ("Electric Bass (finger)", "bass", E),
    34: ("Electric Bass (pick)", "bass", E), 35: ("Fretless Bass", "bass", E), 36: ("Slap Bass 1", "bass", E),
    37: ("Slap Bass 2", "bass", E), 38: ("Synth Bass 1", "bass", S), 39: ("Synth Bass 2", "bass", S),
    40: ("Violin", "string", A), 41: ("Viola", "string", A), 42: ("Cello", "string", A),
    43: ("Contrabass", "string", A), 44: ("Tremolo Strings", "string", A), 45: ("Pizzicato Strings", "string", A),
    46: ("Orchestral Harp", "string", A), 47: ("Timpani", "mallet", A),
    48: ("String Ensemble 1", "string", A), 49: ("String Ensemble 2", "string", A),
    50: ("Synth Strings 1", "string", S), 51: ("Synth Strings 2", "string", S), 52: ("Choir Aahs", "vocal", A),
    53: ("Voice Oohs", "vocal", A), 54: ("Synth Voice", "vocal", S), 55: ("Orchestra Hit", None, A),
    56: ("Trumpet", "brass", A), 57: ("Trombone", "brass", A), 58: ("Tuba", "brass", A),
    59: ("Muted Trumpet", "brass", A), 60: ("French Horn", "brass", A), 61: ("Brass Section", "brass", A),
    62: ("Synth Brass 1", "brass", S), 63: ("Synth Brass 2", "brass", S),
    64: ("Soprano Sax", "reed", A), 65: ("Alto Sax", "reed", A), 66: ("Tenor Sax", "reed", A),
    67: ("Baritone Sax", "reed", A), 68: ("Oboe", "reed", A), 69: ("English Horn", "reed", A),
    70: ("Bassoon", "reed", A), 71: ("Clarinet", "reed", A),
    72: ("Piccolo", "flute", A), 73: ("Flute", "flute", A), 74: ("Recorder", "flute", A),
    75: ("Pan Flute", "flute", A), 76: ("Blown Bottle", "flute", A), 77: ("Shakuhachi", "flute", A),
    78: ("Whistle", "flute", A), 79: ("Ocarina", "flute", A),
    80: ("Lead 1 (square)", "synth_lead", S), 81: ("Lead 2 (sawtooth)", "synth_lead", S),
    82: ("Lead 3 (calliope)", "synth_lead", S), 83: ("Lead 4 (chiff)", "synth_lead", S),
    84: ("Lead 5 (charang)", "synth_lead", S), 85: ("Lead 6 (voice)", "synth_lead", S),
    86: ("Lead 7 (fifths)", "synth_lead", S), 87: ("Lead 8 (bass + lead)", "synth_lead", S),
    88: ("Pad 1 (new age)", "synth_lead", S), 89: ("Pad 2 (warm)", "synth_lead", S),
    90: ("Pad 3 (polysynth)", "synth_lead", S), 91: ("Pad 4 (choir)", "vocal", S),
    92: ("Pad 5 (bowed)", "synth_lead", S), 93: ("Pad 6 (metallic)", "synth_lead", S),
    94: ("Pad 7 (halo)", "synth_lead", S), 95: ("Pad 8 (sweep)", "synth_lead", S),
    96: ("FX 1 (rain)", "synth_lead", S), 97: ("FX 2 (soundtrack)", "synth_lead", S),
    98: ("FX 3 (crystal)", "synth_lead", S), 99: ("FX 4 (atmosphere)", "synth_lead", S),
    100: ("FX 5 (brightness)", "synth_lead", S), 101: ("FX 6 (goblins)", "synth_lead", S),
    102: ("FX 7 (echoes)", "synth_lead", S), 103: ("FX 8 (sci-fi)", "synth_lead", S),
    104: ("Sitar", "guitar", A), 105: ("Banjo", "guitar", A), 106: ("Shamisen", "guitar", A),
    107: ("Koto", "string", A), 108: ("Kalimba", "mallet", A), 109: ("Bagpipe", "reed", A),
    110: ("Fiddle", "string", A), 111: ("Shanai", "reed", A),
    112: ("Tinkle Bell", "mallet", A), 113: ("Agogo", "mallet", A), 114: ("Steel Drums", "mallet", A),
    115: ("Woodblock", None, A), 116: ("Taiko Drum", None, A), 117: ("Melodic Tom", None, A),
    118: ("Synth Drum", None, S), 119: ("Reverse Cymbal", None, S),
    120: ("Guitar Fret Noise", None, A), 121: ("Breath Noise", None, A), 122: ("Seashore", None, A),
    123: ("Bird Tweet", None, A), 124: ("Telephone Ring", None, A), 125: ("Helicopter", None, A),
    126: ("Applause", None, A), 127: ("Gunshot", None, A),
}

# Drum kits by GS kit group (the program of a bank-128 preset // 8 * 8; numbered variants such
# as "Standard 3" share their group). Drum machines are synthetic, other kits acoustic. Group 56
# is GS's SFX kit, but fonts put other percussion there too (MuseScore: marching drums), so it is
# kept like the rest.
DRUM_KIT_GROUPS = {0: ("Standard", A), 8: ("Room", A), 16: ("Power", A), 24: ("Electronic/TR-808", S),
                   32: ("Jazz", A), 40: ("Brush", A), 48: ("Orchestra", A), 56: ("SFX", A)}

GM_DRUMS = {
    35: "Acoustic Bass Drum", 36: "Bass Drum 1", 37: "Side Stick", 38: "Acoustic Snare", 39: "Hand Clap",
    40: "Electric Snare", 41: "Low Floor Tom", 42: "Closed Hi-Hat", 43: "High Floor Tom", 44: "Pedal Hi-Hat",
    45: "Low Tom", 46: "Open Hi-Hat", 47: "Low-Mid Tom", 48: "Hi-Mid Tom", 49: "Crash Cymbal 1",
    50: "High Tom", 51: "Ride Cymbal 1", 52: "Chinese Cymbal", 53: "Ride Bell", 54: "Tambourine",
    55: "Splash Cymbal", 56: "Cowbell", 57: "Crash Cymbal 2", 58: "Vibraslap", 59: "Ride Cymbal 2",
    60: "Hi Bongo", 61: "Low Bongo", 62: "Mute Hi Conga", 63: "Open Hi Conga", 64: "Low Conga",
    65: "High Timbale", 66: "Low Timbale", 67: "High Agogo", 68: "Low Agogo", 69: "Cabasa", 70: "Maracas",
    71: "Short Whistle", 72: "Long Whistle", 73: "Short Guiro", 74: "Long Guiro", 75: "Claves",
    76: "Hi Wood Block", 77: "Low Wood Block", 78: "Mute Cuica", 79: "Open Cuica", 80: "Mute Triangle",
    81: "Open Triangle",
}

FAMILY_NAMES = FAMILIES + (DRUM_FAMILY,)  # what --families accepts here


def family_id(family: str) -> int:
    return DRUM_FAMILY_ID if family == DRUM_FAMILY else FAMILIES.index(family)


def source_id(source: str) -> int:
    return SOURCES.index(source)


def classify(bank: int, program: int) -> tuple[str, str | None, str]:
    """(GM name, family or None when skipped, source) of a SoundFont preset."""
    if bank == DRUM_BANK:
        name, source = DRUM_KIT_GROUPS.get(kit_group(program), ("other", A))
        return f"{name} kits", DRUM_FAMILY, source
    return GM_PROGRAMS[program]


def kit_group(program: int) -> int:
    return program // 8 * 8
