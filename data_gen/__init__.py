"""Dataset generation (create-data), installed as diffmoog.data_gen.

cli.py       argparse and the one-line error contract (exit code 2)
options.py   GenOptions: typed, validated settings; the identity a resume must match
create.py    prepare -> this shard -> finalize; the summary line
prepare.py   refuse to clobber / resume a matching run / --force
shard.py     batch rendering, wav writing on threads, CSV parts, progress manifest
finalize.py  join shard parts, check wavs, write metadata.json (last: it marks "finished")
manifest.py  progress files and locks; wavfile.py the wav writer; fileio.py atomic writes
from_nsynth.py  `--from-nsynth`: copying real NSynth notes into the same layout
from_soundfont.py  `--from-soundfont`: rendering SoundFont notes into NSynth's own layout, with
             soundfont_plan.py (instruments, splits, notes), sf2_presets.py (presets and their
             keys), gm_families.py (GM programs -> NSynth families), soundfont.py (one note with
             TinySoundFont) and render_pool.py (every core)

What the readers need too lives in diffmoog.data, which this package imports (never the
other way round): layout.py (paths, ids, chain_json), items.py (per-item rendering, the
silence/NaN policy, PCM16), tables.py (the CSV columns), fileio.py (DiskError, read_json).
"""
