"""The attack registry: every attack name has one family, families run in a fixed order, and the
stage asks the registry instead of naming attacks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from etio.attacks.base import Attack, get_attack, list_attacks, register_attack
from etio.attacks.settings import ALL_ATTACK_NAMES, AttackSettings, MLLEAK_NAMES, ROBUST_ATTACK_NAMES
from etio.attacks.stage import ConfigView, requirement_problems
from etio.core.errors import EtioInputError
from etio.core.vocabulary import LOWFPR_STAGE


def test_every_attack_name_has_exactly_one_family_in_run_order():
    families = list_attacks()
    names = [n for family in families for n in family.names]
    assert sorted(names) == sorted(ALL_ATTACK_NAMES)
    assert len(names) == len(set(names))
    assert [type(f).__name__ for f in families] == ["MLLeaks", "Oak17", "Threshold", "RobustStrategies",
                                                      "MemGuard", "LowFpr"]
    assert get_attack("top3_l").names == MLLEAK_NAMES
    assert get_attack(ROBUST_ATTACK_NAMES[-1]).names == ROBUST_ATTACK_NAMES
    assert get_attack(LOWFPR_STAGE) is families[-1]


def test_unknown_name_and_taken_name_are_refused():
    with pytest.raises(EtioInputError, match="nosuch"):
        get_attack("nosuch")

    class Again(Attack):
        names = ("oak17",)

    with pytest.raises(ValueError, match="oak17"):
        register_attack(Again())
    assert sum(1 for f in list_attacks() if "oak17" in f.names) == 1


def test_problem_shared_by_mlleaks_and_memguard_is_reported_once():
    view = ConfigView("cfg", [[1, 2]] * 3, 10, "ce", None)
    problems = requirement_problems(view, ["memguard", "mlleak", "threshold"], AttackSettings(mlleak_tuples=3))
    assert len(problems) == 2
    assert problems[0].startswith("ML-Leaks needs at least 3 models per repeat")
    assert "TrainLoss" in problems[1]


def test_stage_names_no_attack():
    source = (Path(__file__).resolve().parents[2] / "etio" / "attacks" / "stage.py").read_text()
    literals = {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not literals & set(ALL_ATTACK_NAMES)
    assert "MLLEAK_NAMES" not in source and "LOWFPR_STAGE" not in source
