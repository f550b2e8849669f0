import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

# `make test` (and CI) runs the hypothesis tests derandomised: the same examples every run, so a
# green suite stays green. `make fuzz` (HYPOTHESIS_PROFILE=fuzz) draws fresh examples, many more,
# and keeps what fails in .hypothesis/ so the next run tries it first.
settings.register_profile("ci", max_examples=150, derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture
def nsynth_fixture_dir():
    path = FIXTURES / "nsynth_format_notes"
    if not path.is_dir():
        pytest.skip(f"shared fixture folder not found at {path} (CI places ../shared beside the clone)")
    return path
