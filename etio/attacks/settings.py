"""The ``[attacks]`` table of an experiment config: how much work each attack does.

Paper defaults (spec: the authors' attack scripts): 30 ML-Leaks tuples, 500 attack-model
epochs, Oak17 with two seeds, MemGuard with 300 steps and epsilon 0.5, one defended
target per repeat. Small configs (digits, tests) lower the tuple count and epochs.

    [attacks]
    seed = 0                   # base seed; every (configuration, attack) derives its own
    mlleak_tuples = 30         # (target, shadow, nm) tuples per configuration
    mlleak_epochs = 500        # ML-Leaks attack-model epochs (also MemGuard's defence/attack models)
    oak17_epochs = 100         # Oak17 per-class attack-model epochs
    oak17_seeds = [0, 1]
    oak17_shadows = 0          # 0 = every other model of the first repeat
    run = ["mlleak", "oak17"]  # attacks `etio reproduce` runs (default: the paper's seven)

    [attacks.memguard]
    targets = 1                # defended targets per repeat (each with 2 attack types)
    max_iteration = 300
    epsilon = 0.5
    samples = 0                # defended members and non-members: 0 = the whole subset and test set, else the first n of each
    weight_decays = [0.0005]   # configurations defended (the authors': normal WD only); [] = all

The robust study's inference strategies (:mod:`etio.attacks.robust`; Song et al., Table 7):

    [attacks.robust]
    targets = 1                # targets attacked per repeat
    calibration = 0.5          # fraction of a class's members (and as many non-members) that calibrate
    epochs = 200               # epochs of the (200, 20, 2) inference networks
    eps = 0.0                  # l∞ budget of the adversarial examples (pixel units); 0 = the target's AdvEps
    pgd_steps = 10             # PGD steps of the adversarial examples
    step_size = 0.25           # PGD step as a fraction of the budget
    nonmembers = 0             # non-members per target: 0 = the whole test set, else its first n

Configs written before these tables existed keep working: ``memguard_max_iteration`` and the
other ``memguard_*`` / ``robust_*`` keys of ``[attacks]`` are read as the nested table's key.

Membership inference at low false-positive rates (:mod:`etio.attacks.lowfpr`: LiRA, RMIA, ROC metrics):

    lowfpr_references = 0      # reference models per point and side (IN / OUT); 0 = every other eligible model
    lira_variance = "fixed"    # LiRA variance behind the trace columns: "fixed" or "per_example"
    rmia_gamma = 2.0           # RMIA's γ (≥ 1): x beats z when LR(x, z) ≥ γ
    lowfpr_delta = 1e-5        # δ of the empirical ε lower bound
    lowfpr_min_negatives = 10  # TPR at FPR α needs at least this/α non-members (else missing)
    lowfpr_augmentations = "auto"  # LiRA's and RMIA's queries: "auto", "none", "mirror" or "mirror_shift"

``lowfpr_augmentations`` (:data:`QUERY_AUGMENTATIONS`): "auto" queries a dataset trained with
augmentation (CIFAR) as "mirror" does and any other dataset as "none"; "mirror" and "mirror_shift"
are input errors in a study of a dataset trained without augmentation. Augmented queries are made
only of the configurations of datasets trained with augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from etio.core.errors import EtioInputError, check_choice
from etio.core.settings import Choice, Integer, Items, Number, Where, fail, flat_record, parse_table, setting, table
from etio.core.vocabulary import ATTACK_STAGES, LOWFPR_STAGE, PAPER_ATTACK_STAGES

#: The attacks ``etio attack`` and ``etio reproduce`` run by default, in the order they run: the
#: paper's (the vocabulary's order), then the low-FPR attacks (LiRA, RMIA, ROC metrics).
ATTACK_NAMES = (*PAPER_ATTACK_STAGES, LOWFPR_STAGE)
MLLEAK_NAMES = ("mlleak", "mlleak_l", "top3", "top3_l")
#: The robust study's inference strategies (Song et al., Table 7), in the order they run.
ROBUST_ATTACK_NAMES = tuple(s for s in ATTACK_STAGES if s not in PAPER_ATTACK_STAGES)
#: Every attack ``--attacks`` accepts.
ALL_ATTACK_NAMES = (*ATTACK_STAGES, LOWFPR_STAGE)
LIRA_VARIANCES = ("fixed", "per_example")


@dataclass(frozen=True)
class QueryAugmentation:
    """One query of LiRA and RMIA: the image shifted ``down`` rows and ``right`` columns (negative: up,
    left; the uncovered border is black, as the training crop of the zero-padded image leaves it), then
    mirrored left to right when ``mirror``."""

    name: str
    down: int = 0
    right: int = 0
    mirror: bool = False


_SHIFTS = (("up", -1, 0), ("down", 1, 0), ("left", 0, -1), ("right", 0, 1))
#: The queries of each ``lowfpr_augmentations`` value, the identity first. "mirror_shift": the
#: identity and its mirror, each as it is and shifted by one pixel up, down, left and right (10 queries).
QUERY_AUGMENTATIONS: dict[str, tuple[QueryAugmentation, ...]] = {
    "none": (QueryAugmentation("identity"),),
    "mirror": (QueryAugmentation("identity"), QueryAugmentation("mirror", mirror=True)),
    "mirror_shift": (QueryAugmentation("identity"), QueryAugmentation("mirror", mirror=True),
                     *(QueryAugmentation(f"{prefix}shift_{name}", down, right, mirror)
                       for prefix, mirror in (("", False), ("mirror_", True)) for name, down, right in _SHIFTS)),
}
#: The values of ``lowfpr_augmentations``: "auto" is "mirror" on a dataset trained with augmentation, else "none".
LOWFPR_AUGMENTATIONS = ("auto", *QUERY_AUGMENTATIONS)
#: What "auto" is on a dataset trained with augmentation.
AUTO_AUGMENTATIONS = "mirror"


def query_augmentations(value: str, augments: bool) -> tuple[QueryAugmentation, ...]:
    """The queries of ``lowfpr_augmentations = value`` on a dataset that does (``augments``) or does not
    augment in training: the identity alone on the latter (a study that names an augmentation for such a
    dataset is refused when it is read, :meth:`AttackSettings.for_datasets`)."""
    if not augments:
        return QUERY_AUGMENTATIONS["none"]
    return QUERY_AUGMENTATIONS[AUTO_AUGMENTATIONS if value == "auto" else value]


def augmentation_problem(value: str, dataset: str | None, augments: bool) -> str | None:
    """Why ``lowfpr_augmentations = value`` cannot query ``dataset`` (None: it can)."""
    if value in ("auto", "none") or augments:
        return None
    return (f'[attacks] lowfpr_augmentations = "{value}": {dataset or "the dataset"} is not trained with '
            f'augmentation; only "auto" or "none" apply to it')


@dataclass(frozen=True)
class MemGuardTable:
    """``[attacks.memguard]``: the defended targets and MemGuard's own settings."""

    targets: int = setting(1, Integer(1))
    max_iteration: int = setting(300, Integer(1))
    epsilon: float = setting(0.5, Number(0.0))
    samples: int = setting(0, Integer(0))
    weight_decays: tuple[float, ...] = setting((0.0005,), Items(Number(), nonempty=False))


@dataclass(frozen=True)
class RobustSettings:
    """``[attacks.robust]``: the robust study's inference strategies (:mod:`etio.attacks.robust`)."""

    targets: int = setting(1, Integer(1))
    calibration: float = setting(0.5, Number(0.0, 1.0, open=("low", "high")))
    epochs: int = setting(200, Integer(1))
    eps: float = setting(0.0, Number(0.0, 1.0))
    pgd_steps: int = setting(10, Integer(1))
    step_size: float = setting(0.25, Number(0.0, open=("low",)))
    nonmembers: int = setting(0, Integer(0))


def _run_order(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(a for a in ALL_ATTACK_NAMES if a in names)


@dataclass(frozen=True)
class AttackSettings:
    seed: int = setting(0, Integer(0))
    mlleak_tuples: int = setting(30, Integer(1))
    mlleak_epochs: int = setting(500, Integer(1))
    oak17_epochs: int = setting(100, Integer(1))
    oak17_seeds: tuple[int, ...] = setting((0, 1), Items(Integer(None)))
    oak17_shadows: int = setting(0, Integer(0))
    memguard: MemGuardTable = table(MemGuardTable, flat_keys=True)
    run: tuple[str, ...] = setting(ATTACK_NAMES, Items(Choice(ALL_ATTACK_NAMES, "attack")))
    robust: RobustSettings = table(RobustSettings, flat_keys=True)
    lowfpr_references: int = setting(0, Where(Integer(0), lambda v: v != 1,
                                              "must be 0 (every eligible model) or at least 2 (a standard deviation "
                                              "needs two references)"))
    lira_variance: str = setting("fixed", Choice(LIRA_VARIANCES))
    rmia_gamma: float = setting(2.0, Number(1.0))
    lowfpr_delta: float = setting(1e-5, Number(0.0, 1.0, open=("high",)))
    lowfpr_min_negatives: float = setting(10.0, Number(1.0))
    lowfpr_augmentations: str = setting("auto", Choice(LOWFPR_AUGMENTATIONS))

    def __post_init__(self):
        object.__setattr__(self, "run", _run_order(self.run))    # run order, whatever order was given

    def to_dict(self) -> dict[str, Any]:
        """The flat form stored beside every attack result (a stored result counts only under equal settings).

        ``lowfpr_augmentations`` is left out at "none" and at an "auto" not resolved for a study
        (:meth:`for_datasets`), as records written before the key existed: results computed without
        augmented queries keep counting, while a study with a dataset trained with augmentation records
        its "auto" as the queries it makes ("mirror"), so its earlier unaugmented results are recomputed.
        """
        record = flat_record(self)
        if record["lowfpr_augmentations"] in ("auto", "none"):
            del record["lowfpr_augmentations"]
        return record

    def for_datasets(self, datasets, source: str = "config") -> "AttackSettings":
        """These settings for a study of ``datasets`` (each with ``name`` and ``augment``, e.g.
        :class:`etio.traces.datasets.DatasetInfo`): an augmentation named for a dataset trained without
        is one input error; "auto" becomes "mirror" when some dataset of the study is trained with
        augmentation (its configurations are queried so, the others' as they are), else "none"."""
        for info in datasets:
            problem = augmentation_problem(self.lowfpr_augmentations, info.name, info.augment)
            if problem:
                fail(source, problem)
        if self.lowfpr_augmentations != "auto":
            return self
        return replace(self, lowfpr_augmentations=AUTO_AUGMENTATIONS if any(i.augment for i in datasets) else "none")

    def query_augmentations(self, augments: bool) -> tuple[QueryAugmentation, ...]:
        """LiRA's and RMIA's queries on a dataset that does (``augments``) or does not augment in training."""
        return query_augmentations(self.lowfpr_augmentations, augments)

    def lowfpr(self):
        """The low-FPR attacks' settings (:class:`etio.attacks.lowfpr.LowFprSettings`)."""
        from etio.attacks.lowfpr import LowFprSettings
        from etio.attacks.roc import RocSettings

        return LowFprSettings(references=self.lowfpr_references, lira_variance=self.lira_variance,
                              rmia_gamma=self.rmia_gamma, augmentations=self.lowfpr_augmentations,
                              roc=RocSettings(min_negatives_factor=self.lowfpr_min_negatives, delta=self.lowfpr_delta))


def parse_attack_settings(raw: Mapping[str, Any] | None, source: str = "config", datasets=None) -> AttackSettings:
    """The ``[attacks]`` table (absent table: paper defaults); with the study's ``datasets`` (their
    :class:`~etio.traces.datasets.DatasetInfo`), checked and resolved for them (:meth:`AttackSettings.for_datasets`)."""
    settings = parse_table(AttackSettings, raw, name="attacks", source=source)
    return settings if datasets is None else settings.for_datasets(datasets, source)


def parse_attack_list(text: str | None) -> list[str]:
    """``"mlleak,oak17"`` -> the attacks in run order; ``None`` -> the default run (:data:`ATTACK_NAMES`)."""
    if text is None:
        return list(ATTACK_NAMES)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise EtioInputError("--attacks is empty; known attacks: " + ", ".join(ALL_ATTACK_NAMES))
    for name in names:
        check_choice("attack", name, ALL_ATTACK_NAMES)
    return [a for a in ALL_ATTACK_NAMES if a in names]
