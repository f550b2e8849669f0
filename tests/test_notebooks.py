"""Every examples/*.ipynb runs top to bottom, at small sizes, in the project's own Python.

DIFFMOOG_NOTEBOOK_SMALL=1 makes each notebook's parameter cell pick small sizes and
DIFFMOOG_NOTEBOOK_OUT sends everything it writes to a temporary folder.
"""
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
# jupyter_client starts the "python3" kernel with sys.executable (its argv says plain "python"),
# so the kernel runs in this venv; test_kernel_is_this_python checks that.
KERNEL = "python3"


@pytest.fixture
def notebook_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFMOOG_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("DIFFMOOG_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets a debugger warning at kernel start
    return tmp_path


def run(nb, cwd: Path):
    NotebookClient(nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def test_kernel_is_this_python(notebook_env):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    run(nb, notebook_env)
    printed = nb.cells[0].outputs[0]["text"].strip()
    assert os.path.realpath(printed) == os.path.realpath(sys.executable)


def test_the_notebooks_are_all_there():
    assert {p.name for p in NOTEBOOKS} >= {"explore_chains.ipynb", "create_dataset.ipynb",
                                           "train_model.ipynb", "evaluate_model.ipynb",
                                           "generate_presets.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, notebook_env):
    # Every cell has an id (nbformat 4.5): without, nbformat warns now and will refuse later.
    assert all("id" in cell for cell in json.loads(path.read_text())["cells"])
    nb = nbformat.read(path, as_version=4)
    # Committed with outputs stripped, so diffs stay readable and the repo small.
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    run(nb, EXAMPLES)  # raises CellExecutionError (with the cell and traceback) on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    # Each notebook shows something: at least one picture.
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
