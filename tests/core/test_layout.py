"""The package layout follows the paper's Figure 4 and imports run one way.

core <- traces <- attacks <- causal <- report <- pipeline <- commands: a module may import
its own stage and the stages to its left, never one to its right. The check reads every
import statement (top level and inside functions) with ``ast``, so a lazy import inside a
function counts too. Architecture names live in the model registry (``etio/traces/models/``)
only: no other module spells one in a string.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from tests.support.repo import REPO, requires_r

ORDER = ("core", "traces", "attacks", "causal", "report", "pipeline", "commands")


def _stage(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "etio" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in ORDER else None


def _module_name(path: Path, root: Path = REPO) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name == "etio":   # from etio import x: x is the module
                found += [(node.lineno, f"etio.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, name))
    return found


def _violations(root: Path = REPO) -> list[str]:
    bad = []
    for path in sorted((root / "etio").rglob("*.py")):
        own = _stage(_module_name(path, root))
        if own is None:
            continue
        for lineno, name in _imports(path, root):
            other = _stage(name)
            if other is not None and ORDER.index(other) > ORDER.index(own):
                bad.append(f"{path.relative_to(root)}:{lineno} ({own}) imports {name} ({other})")
    return bad


def test_every_module_lives_in_a_stage_package():
    loose = [p.name for p in (REPO / "etio").glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert loose == []


def test_imports_run_one_way():
    assert _violations() == []


def test_the_checker_sees_a_backward_import(tmp_path):
    # The check itself must be able to fail: a core module importing the report stage,
    # lazily inside a function, absolutely or relatively, is a violation; a forward one is not.
    core = tmp_path / "etio" / "core"
    core.mkdir(parents=True)
    (tmp_path / "etio" / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "_layout_probe.py").write_text(
        "def f():\n    from etio.report import tables\n    from ..causal import effects\n    from . import errors\n")
    found = _violations(tmp_path)
    assert found == ["etio/core/_layout_probe.py:2 (core) imports etio.report (report)",
                     "etio/core/_layout_probe.py:3 (core) imports etio.causal (causal)"]


@pytest.mark.parametrize("stage", ORDER)
def test_stage_packages_exist(stage):
    assert (REPO / "etio" / stage / "__init__.py").is_file()


#: The one module that reads a TOML file (:func:`etio.core.settings.read_toml`): every study
#: table is parsed by the settings layer, never read on the side.
TOML_READER = "etio/core/settings.py"
TOML_MODULES = ("tomllib", "tomli", "toml", "tomlkit")


def _toml_reads(root: Path = REPO) -> list[str]:
    bad = []
    for path in sorted((root / "etio").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == TOML_READER:
            continue
        bad += [f"{rel}:{lineno} imports {name}" for lineno, name in _imports(path, root)
                if name.split(".")[0] in TOML_MODULES]
    return bad


def test_only_the_settings_layer_reads_toml():
    assert _toml_reads() == []


def test_the_checker_sees_a_toml_read(tmp_path):
    # Outside the settings layer any import of a TOML reader counts, lazy or not; the layer's own does not.
    (tmp_path / "etio" / "traces").mkdir(parents=True)
    (tmp_path / "etio" / "core").mkdir()
    (tmp_path / "etio" / "traces" / "probe.py").write_text(
        "import json\nimport tomllib\n\ndef f():\n    from tomllib import loads\n")
    (tmp_path / "etio" / "core" / "settings.py").write_text("import tomllib\n")
    assert _toml_reads(tmp_path) == ["etio/traces/probe.py:2 imports tomllib", "etio/traces/probe.py:5 imports tomllib"]


# --------------------------------------------------------------------------------------
# Architecture names live in the model registry only
# --------------------------------------------------------------------------------------

MODELS_PACKAGE = Path("etio") / "traces" / "models"


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of ``tree`` (prose may name an architecture)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def _architecture_literals(names, root: Path = REPO) -> list[str]:
    """``path:line: name`` of every string literal (docstrings aside) of an etio module outside the
    model package that names one of the architectures ``names``."""
    pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, sorted(names))) + r")(?![A-Za-z0-9_])")
    bad = []
    for path in sorted((root / "etio").rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[:len(MODELS_PACKAGE.parts)] == MODELS_PACKAGE.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        prose = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
                bad += [f"{rel}:{node.lineno}: {m}" for m in pattern.findall(node.value)]
    return bad


def test_no_module_outside_the_model_registry_names_an_architecture():
    from etio.traces.models import list_models

    names = list_models()
    assert {"mlp_1hidden", "resnet34"} <= set(names)
    assert _architecture_literals(names) == []


def test_the_checker_sees_an_architecture_name(tmp_path):
    # The check itself must be able to fail: a literal (also inside an f-string) outside the model
    # package is reported; a docstring, a comment, a longer word and the model package are not.
    (tmp_path / "etio" / "traces" / "models").mkdir(parents=True)
    (tmp_path / "etio" / "core").mkdir()
    (tmp_path / "etio" / "core" / "probe.py").write_text(
        '"""Trains resnet34."""\n'
        'def f(arch):\n'
        '    """resnet34 in prose."""\n'
        '    # resnet34 in a comment\n'
        '    return arch == "resnet34" or f"{arch}-mlp_1hidden" or "resnet340"\n')
    (tmp_path / "etio" / "traces" / "models" / "zoo.py").write_text('NAME = "resnet34"\n')
    assert _architecture_literals(("resnet34", "mlp_1hidden"), tmp_path) == [
        "etio/core/probe.py:5: resnet34", "etio/core/probe.py:5: mlp_1hidden"]


# --------------------------------------------------------------------------------------
# One owner of every file name: the run layout (etio/core/layout.py, R's r/layout.csv)
# --------------------------------------------------------------------------------------

def _name_fragments() -> set[str]:
    """The distinctive literal parts of the layout's names (8+ characters; ``provenance.json``
    is every output folder's record, not a run's name)."""
    import string

    from etio.core import layout

    return {literal for entry in layout.NAMES for part in entry.pattern.split("/")
            for literal, *_ in string.Formatter().parse(part)
            if len(literal) >= 8 and literal != "provenance.json"}


def _spelled_names(source: str, fragments: set[str], filename: str = "<source>") -> list[tuple[int, str]]:
    """``(line, fragment)`` for each string literal (f-string parts included, docstrings and prose
    left out) that spells a name of the layout: a fragment standing as a name of its own."""
    import re

    tree = ast.parse(source, filename=filename)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docstrings:
            continue
        if re.search(r"\s", node.value):
            continue                     # a sentence (a help text, a message), not a name
        for fragment in fragments:
            before = r"(?<!\w)" if re.match(r"\w", fragment) else ""
            if re.search(before + re.escape(fragment) + r"(?![\w.])", node.value):
                found.append((node.lineno, fragment))
    return sorted(found)


def _spelled_in_r(source: str, fragments: set[str]) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        code = line.split("#", 1)[0]
        found += [(number, f) for f in fragments if f in code]
    return found


def test_no_run_file_name_is_spelled_outside_the_layout():
    fragments = _name_fragments()
    assert {"results-cont-wd_", "-strength.csv", "ates-wd_", "graph-wd_", "-scores.npy.gz"} <= fragments
    spelled = [f"{path.relative_to(REPO)}:{line}: {fragment}"
               for path in sorted((REPO / "etio").rglob("*.py")) if path != REPO / "etio" / "core" / "layout.py"
               for line, fragment in _spelled_names(path.read_text(), fragments, str(path))]
    spelled += [f"{path.relative_to(REPO)}:{line}: {fragment}" for path in sorted((REPO / "r").rglob("*.R"))
                for line, fragment in _spelled_in_r(path.read_text(), fragments)]
    assert not spelled, "file names spelled outside etio/core/layout.py (ask the layout for them):\n" + \
        "\n".join(spelled)


def test_the_name_check_finds_a_spelled_name():
    fragments = _name_fragments()
    source = '''"""Docstrings may name ``results-cont-wd_<wd>.csv``."""
def f(d, loss, attack, wd):
    help = "Directory with the results-cont-wd_*.csv files"
    a = d / f"{loss}-{attack}-strength.csv"
    return a, d / f"results-cont-wd_{wd:f}.csv", "report.md.j2", "example_traces.csv", d / "traces.csv"
'''
    assert _spelled_names(source, fragments) == [(4, "-strength.csv"), (5, "results-cont-wd_"), (5, "traces.csv")]
    r_source = ('# results-cont-wd_%f.csv in a comment is fine\n'
                'paths <- sprintf("results-cont-wd_%s.csv", tag)  # but not in code\n')
    assert _spelled_in_r(r_source, fragments) == [(2, "results-cont-wd_")]


def test_generated_r_layout_is_current():
    from etio.core import layout

    assert (REPO / "r" / "layout.csv").read_text() == layout.r_layout_text(), \
        "r/layout.csv is stale: regenerate it with `python -m etio.core.layout` (make layout)"


def test_the_layout_keeps_todays_names():
    from etio.core import layout
    from etio.core.layout import RunLayout

    run = RunLayout(Path("run"))
    assert [str(p) for p in (run.store, run.traces, run.graphs(0.0005), run.ates(0.005), run.results(0.0005),
                             run.lowfpr_metric_graphs("TPR0.1", 0.0005), run.lowfpr_ates("TPR1", 0.0005),
                             run.low_fpr_graphs(0.005), run.verdicts, run.table("table3"), run.report)] == [
        "run/store", "run/traces.csv", "run/graphs/wd_0.0005", "run/ates/ates-wd_0.005.csv",
        "run/graphs/wd_0.0005/results-cont-wd_0.000500.csv", "run/graphs/lowfpr-TPR0.1-wd_0.0005",
        "run/ates/ates-lowfpr-TPR1-wd_0.0005.csv", "run/graphs/lowfpr-attacks-wd_0.005",
        "run/ates/verdicts-both-estimators.csv", "run/tables/table3", "run/report.md"]
    assert layout.RUN_ENTRIES == ("store", "traces.csv", "graphs", "ates", "tables", "figures", "report.md",
                                  "report.html", "provenance.json")
    assert layout.format_name("graph_figure", wd=0.005, loss="mse", attack="Oak17Acc") == \
        "graphs/graph-wd_0.005-mse-Oak17Acc"
    assert layout.format_name("correlation", wd=0.005) == "corr_results-cont-wd_0.005000.csv"
    assert layout.format_name("scores", key="k", attack="lowfpr") == "configs/k/attacks/lowfpr-scores.npy.gz"
    assert layout.glob_pattern("predictive") == "results-w_dk-cont-wd_*.csv"
    with pytest.raises(TypeError, match="attack"):
        layout.format_name("graph", loss="ce")


def test_readers_accept_both_weight_decay_spellings():
    from etio.core import layout

    for text, wd in [("wd_0.0005", 0.0005), ("graphs-w_dk-cont-wd_0.000500", 0.0005), ("wd_1e-05", 1e-05),
                     ("results-cont-wd_0.005000.csv", 0.005), ("lowfpr-TPR0.1-wd_0.0005", 0.0005)]:
        assert layout.weight_decay_in(text) == wd, text
    assert layout.weight_decay_in("graphs") is None
    assert layout.fields_of("graph_figure", "graph-wd_1e-05-ce-Top3MLLeakAcc", last=True) == \
        {"wd": "1e-05", "loss": "ce", "attack": "Top3MLLeakAcc"}
    assert layout.fields_of("graph", "ce-Oak17Acc-cv_avg_net_discovery.dot") is None
    assert layout.fields_of("authors_graph", "ce-Oak17Acc-cv_avg_net_discovery.dot") == \
        {"loss": "ce", "attack": "Oak17Acc"}
    # every name the layout writes reads back to the fields it was written from
    for wd in (0.0005, 0.005, 1e-05):
        for key in ("graphs", "ates", "comparison", "graph_figure", "ate_forest"):
            fields = {"wd": wd, "loss": "ce", "attack": "Oak17Acc"}
            name = layout.format_name(key, **fields)
            assert float(layout.fields_of(key, name)["wd"]) == wd and layout.weight_decay_in(name) == wd, name


R_NAMES = r"""
source("r/etio.R", chdir = TRUE)
cat(etio_layout_name("graph", loss = "ce", attack = "Oak17Acc"), etio_layout_name("strength", loss = "mse",
    attack = "MLLeakAcc"), etio_layout_name("predictive", wd = 5e-4), etio_layout_name("comparison", wd = 0.005),
    etio_layout_name("correlation", wd = 1e-5), etio_layout_name("graphs", wd = 1e-5), sep = "\n")
"""


@requires_r
def test_r_names_files_as_python_does():
    import subprocess

    from etio.core import layout

    result = subprocess.run(["Rscript", "--vanilla", "-e", R_NAMES], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [
        layout.format_name("graph", loss="ce", attack="Oak17Acc"),
        layout.format_name("strength", loss="mse", attack="MLLeakAcc"),
        layout.format_name("predictive", wd=5e-4), layout.format_name("comparison", wd=0.005),
        layout.format_name("correlation", wd=1e-5), layout.format_name("graphs", wd=1e-5)]


def test_every_name_has_a_folder_and_a_known_weight_decay_spelling():
    import string

    from etio.core import layout

    assert len({n.key for n in layout.NAMES}) == len(layout.NAMES)
    for entry in layout.NAMES:
        assert entry.base in layout.BASES, entry
        for _, field, spec, _ in string.Formatter().parse(entry.pattern):
            if field == "wd":
                assert spec in layout.WEIGHT_DECAY_SPELLINGS, entry
            elif field is not None:
                assert not spec, entry      # only a weight decay has a spelling of its own


def _bench_imports(root: Path = REPO) -> list[str]:
    """Imports of etio.bench from a stage other than the command line (the benchmarks measure the
    stages; a stage that imported them would run measuring code on the pipeline's road)."""
    found = []
    for path in sorted((root / "etio").rglob("*.py")):
        own = _stage(_module_name(path, root))
        if own is None or own == "commands":
            continue
        found += [f"{path.relative_to(root)}:{lineno} ({own}) imports {name}" for lineno, name in _imports(path, root)
                  if name == "etio.bench" or name.startswith("etio.bench.")]
    return found


def test_only_the_command_line_imports_the_benchmarks(tmp_path):
    assert _bench_imports() == []
    pipeline = tmp_path / "etio" / "pipeline"
    pipeline.mkdir(parents=True)
    (tmp_path / "etio" / "__init__.py").write_text("")
    (pipeline / "__init__.py").write_text("")
    (pipeline / "_probe.py").write_text("def f():\n    from etio.bench import train\n    from etio import bench\n")
    assert _bench_imports(tmp_path) == ["etio/pipeline/_probe.py:2 (pipeline) imports etio.bench",
                                        "etio/pipeline/_probe.py:3 (pipeline) imports etio.bench"]
