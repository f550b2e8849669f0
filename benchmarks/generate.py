"""Class-conditional generation (diffmoog-generate --family / --kind), printed as one JSON object.

For every label of --group (NSynth families, or drum kinds from the GM drum names, as the
class table groups them: match/classes.py) with at least --min-real notes in the corpus's
test split (programs and kits never seen in train, from which the class table was built):
  - FD-logmel (analysis/frechet.py, not VGGish FAD) between --per-label generated sounds of
    that label and the test split's real notes of it, against the same for --per-label random
    presets of the chain (chain.sample): `fd_generated`, `fd_random`, their ratio (target <= 0.6);
  - a classifier's accuracy on the generated sounds (how often it names the requested label),
    against chance, 1 / number of labels (target >= 2x chance).
The classifier is logistic regression on the same pooled log-mel statistics the FD uses,
standardised, trained on at most --max-train-per-label notes per label of the train split;
its test-split accuracy is reported too, so a low score on generated sounds can be told apart
from a classifier that cannot tell the labels apart at all. Labels with fewer test notes than
--min-real are reported too, marked `below_min_real`, with no target.

    .venv/bin/python benchmarks/generate.py
    .venv/bin/python benchmarks/generate.py --checkpoint examples/checkpoints/drum_flow --group kind
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
from diffmoog.match.classes import GROUPS, ClassTable, default_table, labelled_notes
from diffmoog.match.generate import DEFAULT_GUIDANCE, sample_one
from diffmoog.match.prior import Prior, default_checkpoint, midi_hz

REPO = Path(__file__).resolve().parent.parent
FD_TARGET = 0.6  # generated FD at most 0.6x the random presets' FD
ACCURACY_TARGET = 2.0  # the requested label named at least twice as often as chance
RENDER_BATCH = 16


def read_notes(dataset, notes, desc: str) -> torch.Tensor:
    return torch.stack([dataset.read_audio(note) for note in tqdm(notes, desc=desc, file=sys.stderr, leave=False)])


def capped(notes: list, cap: int, seed: int, label: str) -> list:
    if len(notes) <= cap:
        return notes
    order = np.random.default_rng([seed, sum(map(ord, label))]).permutation(len(notes))[:cap]
    return [notes[i] for i in sorted(order)]


def by_label(notes, group: str) -> dict[str, list]:
    return {label: members for (g, label), members in labelled_notes(notes).items() if g == group}


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
    p.add_argument("--group", choices=GROUPS, default="family",
                   help="family (NSynth families, --family) or kind (drum kinds, --kind)")
    p.add_argument("--per-label", type=int, default=64, help="generated (and random) sounds per label")
    p.add_argument("--max-train-per-label", type=int, default=300, help="classifier training notes per label")
    p.add_argument("--max-real-per-label", type=int, default=256, help="real test notes per label for the FD")
    p.add_argument("--min-real", type=int, default=30, help="labels with fewer test notes get no target")
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

    # The classifier: every label of the train split.
    train_labels = by_label(train.notes, args.group)
    classes = sorted(train_labels)
    train_x, train_y = [], []
    for index, (label, notes) in enumerate(train_labels.items()):
        audio = read_notes(train, capped(notes, args.max_train_per_label, args.seed, label), f"train {label}")
        train_x.append(logmel_statistics(audio, rate))
        train_y.append(np.full(len(audio), index))
    predict = train_classifier(np.concatenate(train_x), np.concatenate(train_y), len(classes), args.seed)
    chance = 1.0 / len(classes)

    steps = prior.sample_steps
    random_audio = render(chain, [chain.sample(1, seed=args.seed, offset=i) for i in range(args.per_label)])
    random_stats = logmel_statistics(random_audio, rate)
    rows, test_hits, test_total = {}, 0, 0
    for label, notes in by_label(test.notes, args.group).items():
        real_all = read_notes(test, notes, f"test {label}")
        real_stats_all = logmel_statistics(real_all, rate)
        if label in classes:
            test_hits += int((predict(real_stats_all) == classes.index(label)).sum())
        test_total += len(notes)
        if label not in table.labels.get(args.group, []):
            continue
        real_stats = real_stats_all[[notes.index(n) for n in capped(notes, args.max_real_per_label, args.seed, label)]]
        seeds = chain.item_seeds(args.per_label, args.seed)
        params = []
        for i in tqdm(range(args.per_label), desc=f"generating {label}", file=sys.stderr, leave=False):
            preset, _, _ = sample_one(prior, i, args.seed, 1.0, steps, midi_hz(60), seeds[i:i + 1],
                                      (table, args.group, label, args.guidance, False))
            params.append(preset)
        generated = logmel_statistics(render(chain, params), rate)
        fd_gen, fd_rand = frechet_distance(generated, real_stats), frechet_distance(random_stats, real_stats)
        accuracy = float((predict(generated) == classes.index(label)).mean())
        random_accuracy = float((predict(random_stats) == classes.index(label)).mean())
        rows[label] = {"real_notes": len(real_stats), "fd_generated": round(fd_gen, 2), "fd_random": round(fd_rand, 2),
                       "fd_ratio": round(fd_gen / fd_rand, 3), "fd_target_met": fd_gen <= FD_TARGET * fd_rand,
                       "label_accuracy": round(accuracy, 3), "label_accuracy_random_presets": round(random_accuracy, 3),
                       "accuracy_target_met": accuracy >= ACCURACY_TARGET * chance}
        if len(notes) < args.min_real:  # too few real notes for a stable FD: reported, no target
            rows[label].update(below_min_real=True, fd_target_met=None, accuracy_target_met=None)
    out = {"checkpoint": str(checkpoint), "classes": str(table.path), "corpus": args.corpus,
           "feature": "FD-logmel (64-band log-mel mean+std, not VGGish FAD)",
           "group": args.group, "per_label": args.per_label, "guidance": args.guidance, "seed": args.seed,
           "classifier": {"kind": "logistic regression on log-mel statistics", "labels": classes,
                          "train_notes": int(sum(len(x) for x in train_x)),
                          "test_accuracy": round(test_hits / max(test_total, 1), 3), "test_notes": test_total,
                          "chance": round(chance, 4)},
           "targets": {"fd_ratio_at_most": FD_TARGET, "label_accuracy_at_least": round(ACCURACY_TARGET * chance, 4)},
           "labels": rows, "seconds": round(time.perf_counter() - clock, 1)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
