"""Which notes `create-data --from-soundfont` renders: instruments, their splits, their notes.

An instrument is one preset of one font: (font, bank, program). Its id counts the usable
presets of all fonts in command-line order (bank, then program), so it does not depend on
the filters. Its split comes from its split group: the GM program for melodic presets (a
bank-8 variation of the piano goes where the piano goes), and the GS kit group (program // 8:
Standard 0-7, Room 8-15, ...) for drum kits, whose numbered variants share most samples. So
no program is in two splits, and test programs are really unheard. A group's split is a stable
hash of its name (80/10/10, from_nsynth.POOL_SHARES), the same whatever else is selected; with
3 or more groups, an empty split takes the group nearest to its share from a split that can
spare one.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from diffmoog.data.nsynth import choose_subset
from diffmoog.data.nsynth_meta import QUALITIES
from diffmoog.data_gen import gm_families as gm
from diffmoog.data_gen.from_nsynth import DEST_TO_NSYNTH, POOL_SHARES, hash_position, pool_share
from diffmoog.data_gen.sf2_presets import Preset
from diffmoog.errors import ConfigError


@dataclass(frozen=True)
class Instrument:
    id: int
    font: int  # index into the font list
    font_name: str
    preset: Preset
    gm_name: str
    family: str
    source: str
    keys: tuple = ()  # the pitches it plays: its playable keys that the filters keep
    split: str = ""  # NSynth's name: train, valid or test

    @property
    def is_drum_kit(self) -> bool:
        return self.family == gm.DRUM_FAMILY

    @property
    def instrument_str(self) -> str:  # NSynth's <family>_<source>_<number>
        return f"{self.family}_{self.source}_{self.id:03d}"

    @property
    def split_group(self) -> str:
        program = self.preset.program
        return f"gm-drum-kits-{gm.kit_group(program):03d}" if self.is_drum_kit else f"gm-program-{program:03d}"


@dataclass(frozen=True)
class PlannedNote:
    note: int  # NSynth's unique note number
    instrument: Instrument
    pitch: int
    velocity: int

    @property
    def note_str(self) -> str:
        return f"{self.instrument.instrument_str}-{self.pitch:03d}-{self.velocity:03d}"

    def example(self, sample_rate: int) -> dict:
        """The note's examples.json entry: NSynth's fields, then where it came from."""
        inst = self.instrument
        return {"note": self.note, "note_str": self.note_str, "pitch": self.pitch, "velocity": self.velocity,
                "instrument": inst.id, "instrument_str": inst.instrument_str,
                "instrument_family": gm.family_id(inst.family), "instrument_family_str": inst.family,
                "instrument_source": gm.source_id(inst.source), "instrument_source_str": inst.source,
                "sample_rate": sample_rate, "qualities": [0] * len(QUALITIES), "qualities_str": [],
                "soundfont": inst.font_name, "bank": inst.preset.bank, "program": inst.preset.program,
                "preset_name": inst.preset.name,
                "drum": gm.GM_DRUMS.get(self.pitch) if inst.is_drum_kit else None}


def usable_instruments(fonts: list[tuple[Path, list[Preset]]]) -> tuple[list[Instrument], list[dict]]:
    """Every preset with an NSynth family (numbered), and the presets skipped for having none."""
    kept, skipped = [], []
    for index, (path, presets) in enumerate(fonts):
        for preset in presets:
            if preset.program > 127:
                continue
            gm_name, family, source = gm.classify(preset.bank, preset.program)
            if family is None:
                skipped.append({"soundfont": path.name, "bank": preset.bank, "program": preset.program,
                                "preset_name": preset.name, "gm_name": gm_name})
                continue
            kept.append(Instrument(len(kept), index, path.name, preset, gm_name, family, source))
    return kept, skipped


def select(instruments: list[Instrument], filters: dict, fonts_named: str) -> list[Instrument]:
    """The instruments the filters keep, each with the pitches it will play. Named programs and
    families that select nothing are errors (a typo or a font without them), not empty output."""
    chosen = []
    for inst in instruments:
        if _wanted(inst, filters):
            keys = tuple(sorted(k for k in inst.preset.keys if _pitch_kept(k, filters)
                                and (not inst.is_drum_kit or k in gm.DRUM_KEYS)))
            chosen.append(replace(inst, keys=keys))
    _check_named(instruments, chosen, filters, fonts_named)
    playing = [inst for inst in chosen if inst.keys]
    if not playing:
        raise ConfigError(f"{_pitch_flag(filters)}: no selected preset of {fonts_named} plays any of these pitches")
    return playing


def assign_splits(instruments: list[Instrument]) -> list[Instrument]:
    groups = sorted({inst.split_group for inst in instruments})
    share = {group: pool_share(group) for group in groups}
    if len(groups) >= 3:  # every split gets a group: the nearest one that a fuller split can spare
        uppers = [upper for _, upper in POOL_SHARES]
        bounds = {name: (low, upper) for (name, upper), low in zip(POOL_SHARES, [0.0] + uppers)}
        for wanted, (low, upper) in bounds.items():
            if wanted not in share.values():
                sizes = Counter(share.values())
                spare = [group for group in groups if sizes[share[group]] > 1]
                share[min(spare, key=lambda group: _distance(hash_position(group), low, upper))] = wanted
    return [replace(inst, split=DEST_TO_NSYNTH[share[inst.split_group]]) for inst in instruments]


def plan_notes(instruments: list[Instrument], velocities: list[int], size: int | None, seed: int) -> list[PlannedNote]:
    """All (instrument, pitch, velocity) notes, or a seeded subset of `size` of them (a cap)."""
    every = [(inst, pitch, velocity) for inst in instruments for pitch in inst.keys for velocity in velocities]
    notes = [PlannedNote(number, *note) for number, note in enumerate(every)]
    return choose_subset(notes, None if size is None else min(size, len(notes)), seed)


def _wanted(inst: Instrument, filters: dict) -> bool:
    families, programs = filters["families"], filters["programs"]
    if inst.is_drum_kit:  # --programs names melodic programs: kits come along unless the flags leave them out
        wanted = gm.DRUM_FAMILY in families if families else programs is None
    else:
        wanted = (not families or inst.family in families) and (programs is None or inst.preset.program in programs)
    return (wanted and (not filters["sources"] or inst.source in filters["sources"])
            and (not filters["banks"] or inst.preset.bank in filters["banks"]))


def _pitch_kept(key: int, filters: dict) -> bool:
    if filters["pitches"] is not None:
        return key in filters["pitches"]
    low, high = filters["pitch_range"]
    return low <= key <= high


def _pitch_flag(filters: dict) -> str:
    if filters["pitches"] is not None:
        return "--pitches " + " ".join(map(str, filters["pitches"]))
    return "--pitch-min/--pitch-max {}-{}".format(*filters["pitch_range"])


def _check_named(instruments, chosen, filters, fonts_named: str) -> None:
    narrowed = " with the other filters" if filters["programs"] or filters["sources"] or filters["banks"] else ""
    for family in filters["families"] or ():
        if not any(inst.family == family for inst in chosen):
            raise ConfigError(f"--families {family}: no preset of {fonts_named} maps to NSynth family "
                              f"'{family}'{narrowed}")
    for program in filters["programs"] or ():
        if any(inst.preset.program == program and not inst.is_drum_kit for inst in chosen):
            continue
        gm_name, family, source = gm.GM_PROGRAMS[program]
        if family is None:
            why = f"GM program {program} ({gm_name}) has no NSynth family, so it is skipped"
        elif any(inst.preset.program == program and not inst.is_drum_kit for inst in instruments):
            why = f"GM program {program} ({gm_name}) is {family}/{source}, which --families/--sources/--banks leave out"
        else:
            why = f"{fonts_named} has no preset for GM program {program} ({gm_name})"
        raise ConfigError(f"--programs {program}: {why}")


def _distance(position: float, low: float, high: float) -> float:
    return max(low - position, 0.0, position - high)
