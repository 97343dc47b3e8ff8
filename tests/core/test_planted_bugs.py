"""Every bug of the planted-bug fixture (tests/support/planted_bugs.py) fails at least one of its tests.

The bug is planted in a scratch copy of the repository and only its tests run there; pytest's
exit status 1 means tests ran and at least one failed (0 would mean the bug went unnoticed,
other codes that the tests could not even run)."""

from __future__ import annotations

import pytest

from tests.support.planted_bugs import PLANTED, planted_source, run_planted, scratch_copy
from tests.support.repo import REPO


@pytest.mark.parametrize("bug", PLANTED, ids=[b.name for b in PLANTED])
def test_planted_bug_fails_a_test(bug, tmp_path):
    scratch = scratch_copy(REPO, tmp_path / "repo")
    result = run_planted(bug, scratch)
    summary = (result.stdout + result.stderr)[-2000:]
    assert result.returncode == 1, f"{bug.name} ({bug.what}): pytest exit {result.returncode}\n{summary}"
    assert " failed" in result.stdout, summary


def test_a_planted_edit_must_match_the_source_exactly():
    bug = PLANTED[0]
    source = (REPO / bug.path).read_text()
    assert planted_source(bug, source) != source
    with pytest.raises(ValueError, match="occurs 0 times"):
        planted_source(bug, source.replace(bug.edits[0][0], "changed"))
