"""The settings layer: every table of a study parsed by one function into typed objects, with
one line naming the file, the table, the key and the value of whatever is wrong."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from etio.attacks.settings import AttackSettings, MemGuardTable, RobustSettings, parse_attack_settings
from etio.causal.settings import Analysis, parse_analysis
from etio.core.errors import EtioInputError
from etio.core.settings import (Choice, Flag, Integer, Items, Maybe, Number, flat_record, flat_table, parse_table,
                                read_toml, setting, table, with_values)
from etio.pipeline.study import load_study
from tests.support.cli import one_error_line, run_main
from tests.support.repo import REPO

SMOKE = REPO / "experiments" / "smoke.toml"


@dataclass(frozen=True)
class _Inner:
    steps: int = setting(3, Integer(1))


@dataclass(frozen=True)
class _Table:
    count: int = setting(1, Integer(0, 10))
    rate: float = setting(0.5, Number(0.0, 1.0, open=("low",)))
    on: bool = setting(False, Flag())
    kind: str = setting("a", Choice(("a", "b")))
    sizes: tuple[int, ...] = setting((1,), Items(Integer(1), single=True))
    cap: int | None = setting(None, Maybe(Integer(1)))
    inner: _Inner = table(_Inner, flat_keys=True)


def _error(raw, cls=_Table, name="t") -> str:
    with pytest.raises(EtioInputError) as exc:
        parse_table(cls, raw, name=name, source="f.toml")
    return str(exc.value)


def test_values_are_checked_and_typed():
    t = parse_table(_Table, {"count": 10, "rate": 1, "on": True, "kind": "b", "sizes": 4, "cap": 2,
                             "inner": {"steps": 7}}, name="t", source="f.toml")
    assert t == _Table(10, 1.0, True, "b", (4,), 2, _Inner(7))
    assert isinstance(t.rate, float) and parse_table(_Table, None, name="t") == _Table()


@pytest.mark.parametrize("raw, message", [
    ({"count": 11}, "f.toml: [t] count = 11: must be an integer in [0, 10]"),
    ({"count": True}, "f.toml: [t] count = true: must be an integer in [0, 10]"),
    ({"count": 1.0}, "f.toml: [t] count = 1.0: must be an integer in [0, 10]"),
    ({"rate": 0}, "f.toml: [t] rate = 0: must be a finite number in (0, 1]"),
    ({"rate": float("nan")}, "f.toml: [t] rate = nan: must be a finite number in (0, 1]"),
    ({"on": 1}, "f.toml: [t] on = 1: must be true or false"),
    ({"kind": "c"}, 'f.toml: [t] kind = "c": must be one of a, b'),
    ({"sizes": [2, 0]}, "f.toml: [t] sizes = [2, 0]: 0 must be an integer ≥ 1"),
    ({"sizes": []}, "f.toml: [t] sizes = []: must be a non-empty list"),
    ({"cap": 0}, "f.toml: [t] cap = 0: must be an integer ≥ 1"),
    ({"inner": {"steps": 0}}, "f.toml: [t] inner.steps = 0: must be an integer ≥ 1"),
    ({"inner_steps": 0}, "f.toml: [t] inner.steps = 0: must be an integer ≥ 1"),
    ({"inner": 3}, "f.toml: [t.inner] must be a table, got 3"),
    ({"typo": 1}, "f.toml: unknown key 'typo' in [t]; allowed keys: cap, count, inner, kind, on, rate, sizes"),
    ({"inner": {"typo": 1}}, "f.toml: unknown key 'typo' in [t.inner]; allowed keys: steps"),
    ({"inner_steps": 2, "inner": {"steps": 2}},
     "f.toml: [t] inner_steps moved to [t.inner] steps; give it once, in its new place"),
])
def test_a_wrong_key_or_value_is_one_line_naming_it(raw, message):
    assert _error(raw) == message


def test_only_a_table_that_moved_reads_its_old_flat_keys():
    @dataclass(frozen=True)
    class Top:
        inner: _Inner = table(_Inner)

    assert parse_table(Top, {"inner": {"steps": 4}}, name="t") == Top(_Inner(4))
    with pytest.raises(EtioInputError, match=r"^f.toml: unknown key 'inner_steps' in \[t\]; allowed keys: inner$"):
        parse_table(Top, {"inner_steps": 4}, name="t", source="f.toml")


def test_the_top_level_names_its_tables_by_their_key():
    assert _error({"inner": {"steps": -1}}, name="") == "f.toml: [inner] steps = -1: must be an integer ≥ 1"
    assert _error({"count": -1}, name="") == "f.toml: count = -1: must be an integer in [0, 10]"
    assert _error({"x": 1}, name="").startswith("f.toml: unknown key 'x' in the top level;")


def test_command_line_values_pass_the_same_checks():
    assert with_values(Analysis(), {"replicates": 5, "method": "cv"}, name="analysis") == \
        Analysis(method="cv", replicates=5)
    with pytest.raises(EtioInputError, match=r"^command line: \[analysis\] replicates = 0: must be an integer in "
                                             r"\[1, 2147483647\]$"):
        with_values(Analysis(), {"replicates": 0}, name="analysis")


def test_memguard_and_robust_settings_are_nested_tables_and_old_keys_still_work():
    nested = parse_attack_settings({"memguard": {"max_iteration": 30, "targets": 2},
                                    "robust": {"targets": 3, "eps": 0.1}})
    flat = parse_attack_settings({"memguard_max_iteration": 30, "memguard_targets": 2, "robust_targets": 3,
                                  "robust_eps": 0.1})
    assert nested == flat
    assert nested.memguard == MemGuardTable(targets=2, max_iteration=30)
    assert nested.robust == RobustSettings(targets=3, eps=0.1)
    with pytest.raises(EtioInputError) as exc:
        parse_attack_settings({"memguard": {"max_iteration": -1}}, "x.toml")
    assert str(exc.value) == "x.toml: [attacks] memguard.max_iteration = -1: must be an integer ≥ 1"


def test_stored_results_keep_the_flat_record():
    # Stored attack results compare their settings with this record: its keys and their order are
    # those earlier versions wrote, so results stored before the nested tables are reused.
    record = AttackSettings().to_dict()
    assert list(record) == [
        "seed", "mlleak_tuples", "mlleak_epochs", "oak17_epochs", "oak17_seeds", "oak17_shadows",
        "memguard_targets", "memguard_max_iteration", "memguard_epsilon", "memguard_samples",
        "memguard_weight_decays", "run", "robust_targets", "robust_calibration", "robust_epochs", "robust_eps",
        "robust_pgd_steps", "robust_step_size", "robust_nonmembers", "lowfpr_references", "lira_variance",
        "rmia_gamma", "lowfpr_delta", "lowfpr_min_negatives"]
    # the query augmentations are recorded only where they are not the unaugmented queries of earlier versions
    unrecorded = {k: v for k, v in flat_record(AttackSettings()).items() if k != "lowfpr_augmentations"}
    assert record["memguard_weight_decays"] == [0.0005] and record == unrecorded
    assert AttackSettings(lowfpr_augmentations="mirror").to_dict() == {**record, "lowfpr_augmentations": "mirror"}
    assert parse_attack_settings(record) == AttackSettings()
    assert flat_table({"seed": 0, "memguard": {"samples": 50}, "run": ["oak17"]}) == \
        {"seed": 0, "memguard_samples": 50, "run": ["oak17"]}


def test_a_study_in_the_old_flat_form_is_the_same_study(tmp_path):
    text = SMOKE.read_text()
    old = (text.replace("\n[attacks.memguard]\n", "\n").replace("\ntargets = 1", "\nmemguard_targets = 1")
           .replace("\nmax_iteration", "\nmemguard_max_iteration").replace("\nsamples", "\nmemguard_samples")
           .replace("\nweight_decays", "\nmemguard_weight_decays"))
    assert "[attacks.memguard]" in text and "memguard_max_iteration = 30" in old
    path = tmp_path / "old.toml"
    path.write_text(old)
    new_study, old_study = load_study(SMOKE), load_study(path)
    assert new_study == old_study and new_study.attacks.memguard.max_iteration == 30
    # the store and the report keep the study in one form, whichever form the file used
    assert new_study.experiment.to_dict() == old_study.experiment.to_dict()
    assert new_study.experiment.to_dict()["attacks"]["memguard_max_iteration"] == 30


def test_the_store_returns_its_study_typed(tmp_path):
    from etio.traces.config import ExperimentConfig
    from etio.traces.store import create_store, open_store

    study = load_study(SMOKE)
    create_store(tmp_path / "store", study.experiment)
    stored = open_store(tmp_path / "store").config
    assert isinstance(stored, ExperimentConfig)
    assert stored.configurations() == study.experiment.configurations()
    assert stored.training == study.experiment.training and stored.stage_tables == study.experiment.stage_tables


def test_every_experiment_writes_the_nested_tables(repo):
    for path in sorted((repo / "experiments").glob("*.toml")):
        raw = read_toml(path)
        assert parse_attack_settings(raw.get("attacks"), str(path)).run
        assert parse_analysis(raw.get("analysis"), str(path)).method in ("boot", "cv")
        assert not any(k.startswith(("memguard_", "robust_")) for k in raw.get("attacks", {})), \
            f"{path.name} uses the flat attack keys; write [attacks.memguard] / [attacks.robust]"


def test_the_command_line_reports_a_bad_value_in_one_line(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(SMOKE.read_text().replace("max_iteration = 30", "max_iteration = -1"))
    code, err = run_main(monkeypatch, capsys, "plan", "--config", bad, "--no-calibration")
    assert code == 2
    assert one_error_line(err) == f"error: {bad}: [attacks] memguard.max_iteration = -1: must be an integer ≥ 1"
