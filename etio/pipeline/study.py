"""A study config: one TOML file holding every stage's settings, parsed once into one typed object.

Every table is a settings class of :mod:`etio.core.settings`: the trace stage's part (dataset,
grid, training) :mod:`etio.traces.config`, the ``[attacks]`` table
:class:`etio.attacks.settings.AttackSettings` (with its nested ``[attacks.memguard]`` and
``[attacks.robust]``), the ``[analysis]`` table :class:`etio.causal.settings.Analysis` and the
``[executor]`` table (where the units run) :class:`etio.pipeline.executors.ExecutorSettings`.
The command line parses the file once with :func:`load_study`, so a typo in a later stage's
table stops the run before any training, and passes the :class:`Study` on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etio.attacks.settings import AttackSettings, parse_attack_settings
from etio.causal.settings import Analysis, parse_analysis
from etio.core.settings import read_toml
from etio.pipeline.executors import ExecutorSettings, parse_executor_settings
from etio.traces.config import ExperimentConfig, parse_config


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
                 attacks=parse_attack_settings(raw.get("attacks"), source, _datasets(experiment)),
                 analysis=parse_analysis(raw.get("analysis"), source),
                 executor=parse_executor_settings(raw.get("executor"), source))


def load_study(path: Path | str) -> Study:
    """The study file ``path``, every table checked."""
    return parse_study(read_toml(path), source=str(path))


def stage_settings(config: Path | str | None, store) -> tuple[AttackSettings, ExecutorSettings]:
    """The ``[attacks]`` and ``[executor]`` tables of ``config``, else of the study ``store`` was
    made from. Only these tables are read: a file holding them alone is a valid ``config`` here."""
    if config is None:
        tables, source = store.config.stage_tables, f"{store.root}/store.json"
    else:
        tables, source = read_toml(config), str(config)
    return (parse_attack_settings(tables.get("attacks"), source, _datasets(store.config)),
            parse_executor_settings(tables.get("executor"), source))


def _datasets(experiment: ExperimentConfig) -> list:
    """The study's datasets (the ``[attacks]`` table's query augmentations depend on their training)."""
    from etio.traces.datasets import dataset_info

    return [dataset_info(part.dataset) for part in experiment.dataset_grids()]
