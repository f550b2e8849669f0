"""Where training batches come from: synthetic splits, on-the-fly rendering, and real audio.

Every source is indexed by optimiser step, so a resumed (or DDP-sharded) run sees exactly the
batches an uninterrupted run would: step s, rank r takes positions
s * world * batch + r * batch ... of an epoch-seeded permutation of the dataset.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from diffmoog.chain import SEED_KEY, Chain
from diffmoog.errors import ConfigError

VAL_SEED_OFFSET = 1_000_003  # on-the-fly validation items never coincide with training items


class StepSampler:
    """Batch sampler: the index lists for steps `start_step .. total_steps-1` of one rank."""

    def __init__(self, size: int, batch_size: int, seed: int, start_step: int, total_steps: int,
                 rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start_step, self.total_steps, self.rank, self.world = start_step, total_steps, rank, world
        self._epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=gen)
        return self._perm

    def indices(self, step: int) -> list[int]:
        first = (step * self.world + self.rank) * self.batch_size
        out = []
        for position in range(first, first + self.batch_size):
            out.append(int(self._permutation(position // self.size)[position % self.size]))
        return out

    def __iter__(self):
        for step in range(self.start_step, self.total_steps):
            yield self.indices(step)

    def __len__(self):
        return max(0, self.total_steps - self.start_step)


def read_metadata(split_dir: Path) -> dict:
    for folder in (split_dir, split_dir.parent):
        path = folder / "metadata.json"
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise ConfigError(f"{path}: unreadable dataset metadata ({err})") from None
    raise ConfigError(f"{split_dir}: not a create-data split (no metadata.json); "
                      f"make one with `create-data -c CHAIN --size N -o OUT`")


def check_chain(split_dir: Path, chain: Chain, meta: dict) -> None:
    raw = meta.get("chain")
    name = meta.get("chain_name", raw.get("name") if isinstance(raw, dict) else "?")
    if raw is None:
        return
    theirs = Chain.from_dict(raw, source=str(split_dir))
    same = theirs.spec.raw == chain.spec.raw or (
        [(fp.key, fp.param) for fp in theirs.free_params] == [(fp.key, fp.param) for fp in chain.free_params]
        and list(theirs.spec.nodes) == list(chain.spec.nodes))
    if not same:
        raise ConfigError(f"{split_dir}: dataset was made with chain '{name}', which differs from the "
                          f"config's chain '{chain.name}' (set `chain:` to match, or regenerate the data)")


# create-data's split names, and the sizes the built-in configs suggest for them.
SPLITS = ("train", "val", "test")
SPLIT_SIZES = {"train": 20000, "val": 1000, "test": 1000}


def _chain_arg(chain: Chain) -> str:
    """How to name `chain` to create-data: a built-in's name, else its YAML file."""
    from diffmoog.spec import builtin_chains
    builtin = builtin_chains().get(str(chain.name).upper())
    return chain.name if builtin is not None and str(builtin) == str(chain.spec.source) else str(chain.spec.source)


def create_data_command(split_dir: Path, chain: Chain, chain_arg: str | None = None, like: dict | None = None,
                        duration_s: float | None = None) -> str:
    """The create-data command that writes `split_dir` (OUT/NAME/SPLIT) for `chain`.

    `like`: the metadata of an existing split the new one must match (duration, note-off, sample
    rate, seed, wav format); `duration_s`: the config's `data.duration_s`, which wins.
    """
    import shlex

    split_dir = Path(split_dir)
    split, name, out = split_dir.name, split_dir.parent.name, split_dir.parent.parent
    parts = ["create-data", "-c", str(chain_arg or _chain_arg(chain)), "--size", str(SPLIT_SIZES.get(split, 1000)),
             "-s", split, "-o", str(out)]
    if name != str(chain.name).lower():
        parts += ["-n", name]
    like = like or {}
    duration = duration_s if duration_s is not None else like.get("duration")
    if duration is not None and float(duration) != float(chain.spec.duration):
        parts += ["-sd", f"{float(duration):g}"]
    for flag, key, default in (("-no", "note_off", chain.spec.note_off), ("-sr", "sample_rate", chain.sample_rate),
                               ("--seed", "seed", 0)):
        if like.get(key) is not None and like[key] != default:
            parts += [flag, f"{like[key]:g}" if isinstance(like[key], float) else str(like[key])]
    if like.get("format") == "float32":
        parts.append("--float")
    return " ".join(shlex.quote(p) for p in parts)


def _where(path: Path) -> str:
    return "" if path.is_absolute() else f" in {Path.cwd()}"


def check_paths(cfg, chain: Chain, chain_arg: str | None = None) -> None:
    """Before any work: the dataset folders `cfg.data` names exist, else one ConfigError naming the
    key(s) and giving the create-data command(s) that make exactly those folders.

    Relative paths are relative to the current folder (as create-data's `-o data` default is).
    """
    from diffmoog.train.objective import ever_on

    data = cfg.data
    train = [("data.train", data.train)] if isinstance(data.train, str) else \
        [(f"data.train[{i}]", p) for i, p in enumerate(data.train or [])]
    splits = {key: Path(p) for key, p in (*train, ("data.val", data.val)) if p}
    missing = {key: path for key, path in splits.items() if not path.exists()}
    if missing:
        like = None
        for key, path in splits.items():
            if key not in missing:
                try:
                    like = read_metadata(path)
                except ConfigError:
                    pass
                break
        odd = {key: path for key, path in missing.items() if path.name not in SPLITS}
        if odd:
            key, path = next(iter(odd.items()))
            kind = key.split(".")[1].split("[")[0]
            example = create_data_command(Path("data") / str(chain.name).lower() / kind, chain,
                                          chain_arg, like, data.duration_s)
            raise ConfigError(f"{key}: {path}: dataset folder not found{_where(path)}; create-data writes "
                              f"OUT/NAME/SPLIT folders (SPLIT: {', '.join(SPLITS)}), e.g. `{example}` writes "
                              f"data/{str(chain.name).lower()}/{kind}: point {key} at such a folder")
        commands = " && ".join(create_data_command(path, chain, chain_arg, like, data.duration_s)
                               for path in missing.values())
        if len(missing) == 1:
            ((key, path),) = missing.items()
            raise ConfigError(f"{key}: {path}: dataset folder not found{_where(path)}; make it with: {commands}")
        named = " and ".join(f"{key}: {path}" for key, path in missing.items())
        raise ConfigError(f"{named}: dataset folders not found{_where(next(iter(missing.values())))}; "
                          f"make them with: {commands}")
    real = [("data.real_val", data.real_val)]
    if ever_on(data.real_weight):
        real.insert(0, ("data.real_train", data.real_train))
    for key, value in real:
        if value and not Path(value).exists():
            raise ConfigError(f"{key}: {value}: real-audio folder not found{_where(Path(value))}; point it at an "
                              f"NSynth split or a folder of audio files with --set {key}=PATH")


class _Positions(Dataset):
    """Listed splits as one dataset whose items carry their position in it (ids repeat across splits)."""

    def __init__(self, parts: list):
        self.whole = ConcatDataset(parts)

    def __len__(self):
        return len(self.whole)

    def __getitem__(self, index: int) -> dict:
        return {**self.whole[index], "position": index}


def _collate_positions(items: list[dict]) -> dict:
    from diffmoog.data.dataset import collate_batch
    return {**collate_batch(items), "position": [item["position"] for item in items]}


class SyntheticSplit:
    """One create-data split on disk, or several of one chain read as one (`data.train` may be a
    list, e.g. synthetic sounds beside `create-data --from-matches` labels): audio, normalised
    params and physical params per item."""

    def __init__(self, split_dirs: str | list[str], chain: Chain):
        from diffmoog.data.dataset import ParamsDataset, collate_batch  # helper module, imported lazily
        self.dirs = [Path(d) for d in ([split_dirs] if isinstance(split_dirs, (str, Path)) else split_dirs)]
        parts, metas = [], []
        for folder in self.dirs:
            if not folder.is_dir():
                raise ConfigError(f"{folder}: dataset folder not found{_where(folder)}; make it with: "
                                  f"{create_data_command(folder, chain)}")
            meta = read_metadata(folder)
            check_chain(folder, chain, meta)
            part = ParamsDataset(folder, chain=chain)
            if len(part) == 0:
                raise ConfigError(f"{folder}: dataset is empty")
            if parts and part[0]["audio"].shape[-1] != parts[0][0]["audio"].shape[-1]:
                raise ConfigError(f"{folder}: items are {part[0]['audio'].shape[-1]} samples long, those of "
                                  f"{self.dirs[0]} {parts[0][0]['audio'].shape[-1]}; listed splits must match")
            parts.append(part)
            metas.append(meta)
        self.dir, self.meta, self.parts = self.dirs[0], metas[0], parts
        self.dataset = parts[0] if len(parts) == 1 else _Positions(parts)
        self.collate = collate_batch if len(parts) == 1 else _collate_positions
        self.chain = chain
        self.n_samples = int(parts[0][0]["audio"].shape[-1])
        self.note_off = self.meta.get("note_off", chain.spec.note_off)

    def __len__(self):
        return len(self.dataset)

    def to_batch(self, raw: dict) -> dict:
        params = self.chain.from_vector(raw["params"].float())
        if SEED_KEY in raw:
            params[SEED_KEY] = raw[SEED_KEY]
        # Position in this (possibly concatenated) dataset; a single split's ids are its positions.
        index = raw["position"] if "position" in raw else [int(i) for i in raw["id"]]
        return {"audio": raw["audio"].float(), "params": params, "index": torch.tensor(index)}

    def loader(self, sampler, num_workers: int = 0):
        loader = DataLoader(self.dataset, batch_sampler=sampler, collate_fn=self.collate,
                            num_workers=num_workers, persistent_workers=False)
        return (self.to_batch(raw) for raw in loader)

    def sequential(self, batch_size: int, limit: int = 0):
        n = len(self) if limit <= 0 else min(limit, len(self))
        for start in range(0, n, batch_size):
            items = [self.dataset[i] for i in range(start, min(n, start + batch_size))]
            yield self.to_batch(self.collate(items))


class OnTheFly:
    """Random presets rendered by the chain at each step (no dataset on disk)."""

    def __init__(self, chain: Chain, seed: int, duration_s: float, device):
        self.chain, self.seed, self.duration_s, self.device = chain, seed, duration_s, device
        self.n_samples = int(round(duration_s * chain.sample_rate))
        self.note_off = chain.spec.note_off

    def batch(self, batch_size: int, offset: int, seed: int | None = None) -> dict:
        params = self.chain.sample(batch_size, seed=self.seed if seed is None else seed, offset=offset,
                                   device=self.device)
        with torch.no_grad():
            audio = self.chain.render(params, duration=self.duration_s)
        return {"audio": audio, "params": params}

    def loader(self, sampler: StepSampler):
        for step in range(sampler.start_step, sampler.total_steps):
            offset = (step * sampler.world + sampler.rank) * sampler.batch_size
            yield self.batch(sampler.batch_size, offset)

    def sequential(self, batch_size: int, size: int):
        for start in range(0, size, batch_size):
            yield self.batch(min(batch_size, size - start), start, seed=self.seed + VAL_SEED_OFFSET)


def _audio_collate(items: list[dict]) -> dict:
    return {"audio": torch.stack([item["audio"] for item in items]).float()}


class RealAudio:
    """Unlabelled real sounds: an NSynth split (json+wav / TFRecord) or any folder of audio files."""

    def __init__(self, root: str, sample_rate: int, duration_s: float, fmt: str = "auto"):
        path = Path(root)
        if not path.exists():
            raise ConfigError(f"{root}: real-audio folder not found")
        if fmt == "auto":
            from diffmoog.data.nsynth_index import is_nsynth_root  # every NSynth form, not only a split folder
            fmt = "nsynth" if is_nsynth_root(path) else "folder"
        if fmt == "nsynth":
            from diffmoog.data.nsynth import NSynthDataset
            self.dataset = NSynthDataset(path, sample_rate=sample_rate, duration=duration_s)
        else:
            from diffmoog.data.audio_folder import AudioFolderDataset
            self.dataset = AudioFolderDataset(path, sample_rate=sample_rate, duration=duration_s)
        if len(self.dataset) == 0:
            raise ConfigError(f"{root}: no audio files found")

    def __len__(self):
        return len(self.dataset)

    def loader(self, sampler, num_workers: int = 0):
        return iter(DataLoader(self.dataset, batch_sampler=sampler, collate_fn=_audio_collate,
                               num_workers=num_workers))

    def sequential(self, batch_size: int, limit: int = 0):
        n = len(self) if limit <= 0 else min(limit, len(self))
        for start in range(0, n, batch_size):
            yield _audio_collate([self.dataset[i] for i in range(start, min(n, start + batch_size))])
