"""A study config: one TOML file holding every stage's settings, validated at once.

The trace stage's part (dataset, grid, training) is parsed by :mod:`etio.traces.config`, the
``[attacks]`` table by :mod:`etio.attacks.settings`, the ``[analysis]`` table by
:mod:`etio.causal.settings` and the ``[executor]`` table (where the units run) by
:mod:`etio.pipeline.executors`. Loading a study checks them all, so a typo in a later stage's
table stops the run before any training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etio.attacks.settings import AttackSettings, parse_attack_settings
from etio.causal.settings import Analysis, parse_analysis
from etio.pipeline.executors import ExecutorSettings, parse_executor_settings
from etio.traces.config import ExperimentConfig, parse_config, read_config_file


@dataclass(frozen=True)
class Study:
    experiment: ExperimentConfig
    attacks: AttackSettings
    analysis: Analysis
    executor: ExecutorSettings = ExecutorSettings()

    @property
    def name(self) -> str:
        return self.experiment.name


def parse_study(raw: dict[str, Any], source: str = "config") -> Study:
    experiment = parse_config(raw, source)
    return Study(experiment=experiment,
                 attacks=parse_attack_settings(experiment.stage_tables.get("attacks"), source),
                 analysis=parse_analysis(experiment.stage_tables.get("analysis"), source),
                 executor=parse_executor_settings(experiment.stage_tables.get("executor"), source))


def load_study(path: Path | str) -> Study:
    return parse_study(read_config_file(path), source=str(path))
