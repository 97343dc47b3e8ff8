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
    memguard_targets = 1       # defended targets per repeat (each with 2 attack types)
    memguard_max_iteration = 300
    memguard_epsilon = 0.5
    memguard_samples = 0       # defended members and non-members: 0 = the whole subset and test set, else the first n of each
    memguard_weight_decays = [0.0005]   # configurations defended (the authors': normal WD only); [] = all
    run = ["mlleak", "oak17"]  # attacks `etio reproduce` runs (default: the paper's seven)

The robust study's inference strategies (:mod:`etio.attacks.robust`; Song et al., Table 7):

    robust_targets = 1         # targets attacked per repeat
    robust_calibration = 0.5   # fraction of a class's members (and as many non-members) that calibrate
    robust_epochs = 200        # epochs of the (200, 20, 2) inference networks
    robust_eps = 0.0           # l∞ budget of the adversarial examples (pixel units); 0 = the target's AdvEps
    robust_pgd_steps = 10      # PGD steps of the adversarial examples
    robust_step_size = 0.25    # PGD step as a fraction of the budget
    robust_nonmembers = 0      # non-members per target: 0 = the whole test set, else its first n

Membership inference at low false-positive rates (:mod:`etio.attacks.lowfpr`: LiRA, RMIA, ROC metrics):

    lowfpr_references = 0      # reference models per point and side (IN / OUT); 0 = every other eligible model
    lira_variance = "fixed"    # LiRA variance behind the trace columns: "fixed" or "per_example"
    rmia_gamma = 2.0           # RMIA's γ (≥ 1): x beats z when LR(x, z) ≥ γ
    lowfpr_delta = 1e-5        # δ of the empirical ε lower bound
    lowfpr_min_negatives = 10  # TPR at FPR α needs at least this/α non-members (else missing)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from etio.core.errors import EtioInputError, check_choice
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
class AttackSettings:
    seed: int = 0
    mlleak_tuples: int = 30
    mlleak_epochs: int = 500
    oak17_epochs: int = 100
    oak17_seeds: tuple[int, ...] = (0, 1)
    oak17_shadows: int = 0
    memguard_targets: int = 1
    memguard_max_iteration: int = 300
    memguard_epsilon: float = 0.5
    memguard_samples: int = 0
    memguard_weight_decays: tuple[float, ...] = (0.0005,)
    run: tuple[str, ...] = ATTACK_NAMES
    robust_targets: int = 1
    robust_calibration: float = 0.5
    robust_epochs: int = 200
    robust_eps: float = 0.0
    robust_pgd_steps: int = 10
    robust_step_size: float = 0.25
    robust_nonmembers: int = 0
    lowfpr_references: int = 0
    lira_variance: str = "fixed"
    rmia_gamma: float = 2.0
    lowfpr_delta: float = 1e-5
    lowfpr_min_negatives: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["oak17_seeds"] = list(self.oak17_seeds)
        d["memguard_weight_decays"] = list(self.memguard_weight_decays)
        d["run"] = list(self.run)
        return d

    def robust(self):
        """The robust strategies' settings (:class:`etio.attacks.robust.RobustAttackSettings`)."""
        from etio.attacks.robust import RobustAttackSettings

        return RobustAttackSettings(targets_per_repeat=self.robust_targets, calibration=self.robust_calibration,
                                    epochs=self.robust_epochs, eps=self.robust_eps, pgd_steps=self.robust_pgd_steps,
                                    step_size=self.robust_step_size, nonmembers=self.robust_nonmembers)

    def lowfpr(self):
        """The low-FPR attacks' settings (:class:`etio.attacks.lowfpr.LowFprSettings`)."""
        from etio.attacks.lowfpr import LowFprSettings
        from etio.attacks.roc import RocSettings

        return LowFprSettings(references=self.lowfpr_references, lira_variance=self.lira_variance,
                              rmia_gamma=self.rmia_gamma,
                              roc=RocSettings(min_negatives_factor=self.lowfpr_min_negatives, delta=self.lowfpr_delta))


def parse_attack_settings(raw: Mapping[str, Any] | None, source: str = "config") -> AttackSettings:
    """Validate the ``[attacks]`` table (absent table: paper defaults)."""
    raw = dict(raw or {})
    defaults = AttackSettings()
    allowed = set(defaults.to_dict())
    for key in raw:
        if key not in allowed:
            raise EtioInputError(f"{source}: unknown key {key!r} in [attacks]; allowed keys: {', '.join(sorted(allowed))}")

    def integer(key: str, minimum: int) -> int:
        v = raw.get(key, getattr(defaults, key))
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            raise EtioInputError(f"{source}: [attacks].{key} must be an integer ≥ {minimum}, got {v!r}")
        return v

    seeds = raw.get("oak17_seeds", list(defaults.oak17_seeds))
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise EtioInputError(f"{source}: [attacks].oak17_seeds must be a non-empty list of integers, got {seeds!r}")
    eps = raw.get("memguard_epsilon", defaults.memguard_epsilon)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
        raise EtioInputError(f"{source}: [attacks].memguard_epsilon must be a number ≥ 0, got {eps!r}")
    def number(key: str, low: float, high: float | None = None) -> float:
        v = raw.get(key, getattr(defaults, key))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < low or (high is not None and v > high):
            bound = f"in [{low:g}, {high:g}]" if high is not None else f"≥ {low:g}"
            raise EtioInputError(f"{source}: [attacks].{key} must be a number {bound}, got {v!r}")
        return float(v)

    run = raw.get("run", list(defaults.run))
    if not isinstance(run, list) or not run or not all(isinstance(a, str) for a in run):
        raise EtioInputError(f"{source}: [attacks].run must be a non-empty list of attack names, got {run!r}")
    for name in run:
        if name not in ALL_ATTACK_NAMES:
            raise EtioInputError(f"{source}: unknown attack {name!r} in [attacks].run; known attacks: "
                                 f"{', '.join(ALL_ATTACK_NAMES)}")
    calibration = number("robust_calibration", 0.0, 1.0)
    if not 0 < calibration < 1:
        raise EtioInputError(f"{source}: [attacks].robust_calibration must be strictly between 0 and 1, "
                             f"got {calibration!r}")
    step = number("robust_step_size", 0.0)
    if step <= 0:
        raise EtioInputError(f"{source}: [attacks].robust_step_size must be > 0, got {step!r}")
    variance = raw.get("lira_variance", defaults.lira_variance)
    if variance not in LIRA_VARIANCES:
        raise EtioInputError(f"{source}: [attacks].lira_variance must be one of {', '.join(LIRA_VARIANCES)}, "
                             f"got {variance!r}")
    delta = number("lowfpr_delta", 0.0, 1.0)
    if not delta < 1:
        raise EtioInputError(f"{source}: [attacks].lowfpr_delta must be below 1, got {delta!r}")
    min_negatives = number("lowfpr_min_negatives", 1.0)
    references = integer("lowfpr_references", 0)
    if references == 1:
        raise EtioInputError(f"{source}: [attacks].lowfpr_references must be 0 (every eligible model) or at least "
                             f"2 (a standard deviation needs two references), got 1")
    wds = raw.get("memguard_weight_decays", list(defaults.memguard_weight_decays))
    if not isinstance(wds, list) or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in wds):
        raise EtioInputError(f"{source}: [attacks].memguard_weight_decays must be a list of numbers, got {wds!r}")
    return AttackSettings(
        seed=integer("seed", 0),
        mlleak_tuples=integer("mlleak_tuples", 1),
        mlleak_epochs=integer("mlleak_epochs", 1),
        oak17_epochs=integer("oak17_epochs", 1),
        oak17_seeds=tuple(seeds),
        oak17_shadows=integer("oak17_shadows", 0),
        memguard_targets=integer("memguard_targets", 1),
        memguard_max_iteration=integer("memguard_max_iteration", 1),
        memguard_epsilon=float(eps),
        memguard_samples=integer("memguard_samples", 0),
        memguard_weight_decays=tuple(float(w) for w in wds),
        run=tuple(a for a in ALL_ATTACK_NAMES if a in run),
        robust_targets=integer("robust_targets", 1),
        robust_calibration=calibration,
        robust_epochs=integer("robust_epochs", 1),
        robust_eps=number("robust_eps", 0.0, 1.0),
        robust_pgd_steps=integer("robust_pgd_steps", 1),
        robust_step_size=step,
        robust_nonmembers=integer("robust_nonmembers", 0),
        lowfpr_references=references,
        lira_variance=variance,
        rmia_gamma=number("rmia_gamma", 1.0),
        lowfpr_delta=delta,
        lowfpr_min_negatives=min_negatives,
    )


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
