"""The README's module reference is generated from the code and must be current."""
import subprocess
import sys
from pathlib import Path

from diffmoog import docs
from diffmoog.modules import MODULES

REPO = Path(__file__).resolve().parent.parent


def test_readme_module_reference_is_current():
    result = subprocess.run([sys.executable, "-m", "diffmoog.docs", "--check"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_reference_lists_every_module_param_and_control_port():
    text = docs.reference()
    for name, module in MODULES.items():
        assert f"### `{name}`" in text
        assert module.description in text
        for param in module.PARAMS:
            assert f"| `{param.name}` | {param.unit or '-'} |" in text, (name, param.name)
        for port, extra in module.CONTROL_PORTS.items():
            assert f"Control port `{port}`" in text, (name, port)
            for param in extra:
                assert f"| `{param.name}` |" in text, (name, port, param.name)
    # A wiring-dependent module (the mixer's per-input levels) is documented by placeholder.
    assert "`level_<input>`" in text


def test_param_rows_carry_range_scale_default():
    from diffmoog.params import Param
    row = docs._param_row(Param("cutoff_hz", "Hz", 30.0, 8000.0, "log", 1000.0, description="Cutoff."))
    assert row == "| `cutoff_hz` | Hz | 30 .. 8000 | log | 1000 | Cutoff. |"
    choice = docs._param_row(Param("shape", "", scale="categorical", choices=("a", "b"), default="b",
                                   learnable=False, description="x"))
    assert "`a` \\| `b`" in choice and "`b`" in choice and "setting" in choice


def test_write_then_check_on_a_stale_copy(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nintro\n\n{docs.START}\nold text\n{docs.END}\n\n## after\n")
    assert docs.main(["--check", "--readme", str(readme)]) == 1
    assert "stale" in capsys.readouterr().err
    assert docs.main(["--write", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# title\n\nintro\n\n") and text.endswith("\n\n## after\n")
    assert "old text" not in text and "### `filter`" in text
    assert docs.main(["--check", "--readme", str(readme)]) == 0


def test_missing_markers_is_one_clear_error(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    assert docs.main(["--check", "--readme", str(readme)]) == 2
    err = capsys.readouterr().err
    assert "no module markers" in err and str(readme) in err


def test_readme_lists_every_builtin_chain_with_its_param_count():
    import re

    import diffmoog
    from diffmoog.spec import builtin_chains

    text = (REPO / "README.md").read_text()
    table = text[text.index("### Built-in chains"):text.index("## Module reference")]
    counts = {}
    for names, count in re.findall(r"^\| (`[A-Z_0-9]+`(?: / `[A-Z_0-9]+`)*) \| (\d+) \|", table, re.M):
        for name in re.findall(r"`([A-Z_0-9]+)`", names):
            counts[name] = int(count)
    for name in builtin_chains():
        assert name in counts, f"README's chain table misses {name}"
        assert counts[name] == len(diffmoog.Chain.load(name).free_params), name
