import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture
def nsynth_fixture_dir():
    path = FIXTURES / "nsynth_format_notes"
    if not path.is_dir():
        pytest.skip(f"shared fixture folder not found at {path} (CI places ../shared beside the clone)")
    return path
