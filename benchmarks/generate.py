"""Class-conditional generation (diffmoog-generate --family), printed as one JSON object.

For every family with at least --min-real notes in the corpus's test split (programs never
seen in train, from which the class table was built):
  - FD-logmel (analysis/frechet.py, not VGGish FAD) between --per-label generated sounds of
    that family and the test split's real notes of it, against the same for --per-label random
    presets of the chain (chain.sample): `fd_generated`, `fd_random`, their ratio (target <= 0.6);
  - a family classifier's accuracy on the generated sounds (how often it names the requested
    family), against chance, 1 / number of families (target >= 2x chance).
The classifier is logistic regression on the same pooled log-mel statistics the FD uses,
standardised, trained on at most --max-train-per-label notes per family of the train split;
its test-split accuracy is reported too, so a low score on generated sounds can be told apart
from a classifier that cannot tell the families apart at all.

    .venv/bin/python benchmarks/generate.py
    .venv/bin/python benchmarks/generate.py --per-label 32 --max-train-per-label 100 --seed 1
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from diffmoog.analysis.frechet import frechet_distance, logmel_statistics
from diffmoog.data.nsynth import NSynthDataset
from diffmoog.match.classes import ClassTable, default_table
from diffmoog.match.generate import DEFAULT_GUIDANCE, sample_one
from diffmoog.match.prior import Prior, default_checkpoint, midi_hz

REPO = Path(__file__).resolve().parent.parent
FD_TARGET = 0.6  # generated FD at most 0.6x the random presets' FD
ACCURACY_TARGET = 2.0  # the requested family named at least twice as often as chance
RENDER_BATCH = 16


def read_notes(dataset, notes, desc: str) -> torch.Tensor:
    return torch.stack([dataset.read_audio(note) for note in tqdm(notes, desc=desc, file=sys.stderr, leave=False)])


def capped(notes: list, cap: int, seed: int, label: str) -> list:
    if len(notes) <= cap:
        return notes
    order = np.random.default_rng([seed, sum(map(ord, label))]).permutation(len(notes))[:cap]
    return [notes[i] for i in sorted(order)]


def by_family(notes) -> dict[str, list]:
    out: dict[str, list] = {}
    for note in notes:
        out.setdefault(note.family_str, []).append(note)
    return dict(sorted(out.items()))


def render(chain, params: list[dict]) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for start in range(0, len(params), RENDER_BATCH):
            chunk = params[start:start + RENDER_BATCH]
            batch = {key: torch.cat([p[key] for p in chunk]) for key in chunk[0]}
            out.append(chain.render(batch))
    return torch.cat(out)


def train_classifier(x: np.ndarray, y: np.ndarray, classes: int, seed: int):
    """Multinomial logistic regression (full-batch L-BFGS, small L2) on standardised features."""
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    features = torch.from_numpy((x - mean) / std).float()
    labels = torch.from_numpy(y).long()
    layer = torch.nn.Linear(features.shape[1], classes)
    optimizer = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(features), labels) + 1e-3 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return layer(torch.from_numpy((z - mean) / std).float()).argmax(-1).numpy()
    return predict


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="flow checkpoint (default: the committed one)")
    p.add_argument("--classes", default=None, help="class table (default <checkpoint>/classes.safetensors)")
    p.add_argument("--corpus", default=str(REPO / "corpora" / "gm"), help="folder with nsynth-{train,test}/")
    p.add_argument("--per-label", type=int, default=64, help="generated (and random) sounds per family")
    p.add_argument("--max-train-per-label", type=int, default=300, help="classifier training notes per family")
    p.add_argument("--max-real-per-label", type=int, default=256, help="real test notes per family for the FD")
    p.add_argument("--min-real", type=int, default=30, help="families with fewer test notes are left out")
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # the machine's cores are shared with training jobs
    clock = time.perf_counter()
    checkpoint = default_checkpoint(args.checkpoint)
    prior = Prior(checkpoint)
    chain = prior.chain
    table = ClassTable(Path(args.classes) if args.classes else default_table(checkpoint), checkpoint,
                       prior.condition_size, "--classes")
    rate, duration = chain.sample_rate, float(chain.spec.duration)
    train = NSynthDataset(Path(args.corpus) / "nsynth-train", sample_rate=rate, duration=duration)
    test = NSynthDataset(Path(args.corpus) / "nsynth-test", sample_rate=rate, duration=duration)

    # The classifier: every family of the train split.
    families = sorted(by_family(train.notes))
    train_x, train_y = [], []
    for index, (family, notes) in enumerate(by_family(train.notes).items()):
        audio = read_notes(train, capped(notes, args.max_train_per_label, args.seed, family), f"train {family}")
        train_x.append(logmel_statistics(audio, rate))
        train_y.append(np.full(len(audio), index))
    predict = train_classifier(np.concatenate(train_x), np.concatenate(train_y), len(families), args.seed)
    chance = 1.0 / len(families)

    steps = prior.sample_steps
    random_audio = render(chain, [chain.sample(1, seed=args.seed, offset=i) for i in range(args.per_label)])
    random_stats = logmel_statistics(random_audio, rate)
    rows, test_hits, test_total = {}, 0, 0
    for family, notes in by_family(test.notes).items():
        real_all = read_notes(test, notes, f"test {family}")
        real_stats_all = logmel_statistics(real_all, rate)
        if family in families:
            test_hits += int((predict(real_stats_all) == families.index(family)).sum())
        test_total += len(notes)
        if len(notes) < args.min_real or family not in table.labels.get("family", []):
            continue
        real_stats = real_stats_all[[notes.index(n) for n in capped(notes, args.max_real_per_label, args.seed,
                                                                  family)]]
        seeds = chain.item_seeds(args.per_label, args.seed)
        params = []
        for i in tqdm(range(args.per_label), desc=f"generating {family}", file=sys.stderr, leave=False):
            preset, _, _ = sample_one(prior, i, args.seed, 1.0, steps, midi_hz(60), seeds[i:i + 1],
                                      (table, "family", family, args.guidance, False))
            params.append(preset)
        generated = logmel_statistics(render(chain, params), rate)
        fd_gen, fd_rand = frechet_distance(generated, real_stats), frechet_distance(random_stats, real_stats)
        accuracy = float((predict(generated) == families.index(family)).mean())
        rows[family] = {"real_notes": len(real_stats), "fd_generated": round(fd_gen, 2), "fd_random": round(fd_rand, 2),
                        "fd_ratio": round(fd_gen / fd_rand, 3), "fd_target_met": fd_gen <= FD_TARGET * fd_rand,
                        "label_accuracy": round(accuracy, 3),
                        "label_accuracy_random_presets": round(float((predict(random_stats)
                                                                       == families.index(family)).mean()), 3),
                        "accuracy_target_met": accuracy >= ACCURACY_TARGET * chance}
    out = {"checkpoint": str(checkpoint), "classes": str(table.path), "corpus": args.corpus,
           "feature": "FD-logmel (64-band log-mel mean+std, not VGGish FAD)",
           "per_label": args.per_label, "guidance": args.guidance, "seed": args.seed,
           "classifier": {"kind": "logistic regression on log-mel statistics", "families": families,
                          "train_notes": int(sum(len(x) for x in train_x)),
                          "test_accuracy": round(test_hits / max(test_total, 1), 3), "test_notes": test_total,
                          "chance": round(chance, 4)},
           "targets": {"fd_ratio_at_most": FD_TARGET, "label_accuracy_at_least": round(ACCURACY_TARGET * chance, 4)},
           "labels": rows, "seconds": round(time.perf_counter() - clock, 1)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
