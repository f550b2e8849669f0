"""benchmarks/morph.py at a tiny size: it runs, and prints both paths' numbers for the same
endpoints, the same every run (the README's morph table comes from it)."""
import importlib.util
import json
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_morph", REPO / "benchmarks" / "morph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_morph_benchmark_compares_both_paths(capsys):
    threads = torch.get_num_threads()
    benchmark = load_benchmark()
    runs = []
    try:
        for _ in range(2):
            assert benchmark.main(["--pairs", "2", "--reference", "8", "--steps", "4", "--ode-steps", "4",
                                   "--no-fixtures"]) == 0
            runs.append(json.loads(capsys.readouterr().out))
    finally:
        torch.set_num_threads(threads)
    result = runs[0]["sets"]["prior samples"]
    assert result["pairs"] == 2
    for how in ("straight line", "through the prior"):
        row = result[how]
        assert row["path_ratio"] >= 1.0 - 1e-6  # a path is never shorter than its endpoints' distance
        assert 1 / 3 - 1e-6 <= row["max_step_share"] <= 1.0  # 3 steps between 4 sounds
        assert row["fd_to_prior"] >= 0 and row["silent_rate"] == 0.0
    assert runs[0]["sets"] == runs[1]["sets"]
