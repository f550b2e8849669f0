"""Dataset generation (create-data), installed as diffmoog.data_gen.

cli.py       argparse and the one-line error contract (exit code 2)
options.py   GenOptions: typed, validated settings; the identity a resume must match
create.py    prepare -> this shard -> finalize; the summary line
prepare.py   refuse to clobber / resume a matching run / --force
shard.py     batch rendering, wav writing on threads, CSV parts, progress manifest
finalize.py  join shard parts, check wavs, write metadata.json (last: it marks "finished")
items.py     deterministic per-item rendering and the silence/NaN policy; PCM conversion
manifest.py  progress files and locks; tables.py the CSV columns; wavfile.py the wav writer
from_nsynth.py  `--from-nsynth`: copying real NSynth notes into the same layout
"""
