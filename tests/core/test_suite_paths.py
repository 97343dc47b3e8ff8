"""Every test file or test that the project names (make qa, the mutation selection and its
planted bugs, README, docs, comments in the code) exists under that name, so moving or renaming
a test cannot leave a stale reference behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.repo import REPO

#: A path under tests/, optionally with ``::test_name`` (a pytest node id without parameters).
REFERENCE = re.compile(r"\btests/[\w./-]+\.(?:py|R|toml|json|csv)(?:::\w+)?")
#: Where the project names its tests.
SOURCES = ("README.md", "Makefile", "pyproject.toml", "docs/*.md", "scripts/*.py", "etio/**/*.py",
           "etio/**/*.md", "r/**/*.R", "tests/**/*.py", "tests/**/*.R", "tests/data/**/README.md")


def references() -> dict[str, list[str]]:
    """``reference -> [file:line, ...]`` over every source file."""
    found: dict[str, list[str]] = {}
    for pattern in SOURCES:
        for path in sorted(REPO.glob(pattern)):
            if not path.is_file() or path == Path(__file__).resolve():   # this file's examples are stale on purpose
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                for ref in REFERENCE.findall(line):
                    found.setdefault(ref, []).append(f"{path.relative_to(REPO)}:{number}")
    return found


def missing(ref: str) -> str | None:
    """Why ``ref`` names nothing, or None when it names a file (and a test function defined in it)."""
    path, _, name = ref.partition("::")
    file = REPO / path
    if not file.is_file():
        return f"no file {path}"
    if name and not re.search(rf"^\s*(?:async\s+)?def {name}", file.read_text(), re.M):
        return f"{path} defines no {name}"     # a name may be a prefix (test_batched_* in the docs)
    return None


def test_every_named_test_file_and_test_exists():
    found = references()
    assert "tests/commands/test_qa_matrix.py" in found              # make qa's module is seen
    assert any("::" in ref for ref in found)                         # and the mutation selection's ids
    stale = [f"{why} (named at {', '.join(where)})" for ref, where in found.items() if (why := missing(ref))]
    assert not stale, "\n".join(stale)


@pytest.mark.parametrize("ref, why", [
    ("tests/core/test_nothing_here.py", "no file tests/core/test_nothing_here.py"),
    ("tests/core/test_schema.py::test_no_such_test", "tests/core/test_schema.py defines no test_no_such_test"),
    ("tests/core/test_schema.py", None),
])
def test_a_stale_reference_is_told_apart_from_a_live_one(ref, why):
    assert missing(ref) == why
