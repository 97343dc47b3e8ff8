"""The package layout follows the paper's Figure 4 and imports run one way.

core <- traces <- attacks <- causal <- report <- pipeline <- commands: a module may import
its own stage and the stages to its left, never one to its right. The check reads every
import statement (top level and inside functions) with ``ast``, so a lazy import inside a
function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tests.support.repo import REPO

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
