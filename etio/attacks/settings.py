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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from etio.core.errors import EtioInputError, check_choice
from etio.core.vocabulary import ATTACK_STAGES

#: The attacks of ``etio attack --attacks``, in the order they run (the vocabulary's order).
ATTACK_NAMES = ATTACK_STAGES
MLLEAK_NAMES = ("mlleak", "mlleak_l", "top3", "top3_l")


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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["oak17_seeds"] = list(self.oak17_seeds)
        d["memguard_weight_decays"] = list(self.memguard_weight_decays)
        return d


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
    )


def parse_attack_list(text: str | None) -> list[str]:
    """``"mlleak,oak17"`` -> the attacks in run order; ``None`` -> all of them."""
    if text is None:
        return list(ATTACK_NAMES)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise EtioInputError("--attacks is empty; known attacks: " + ", ".join(ATTACK_NAMES))
    for name in names:
        check_choice("attack", name, ATTACK_NAMES)
    return [a for a in ATTACK_NAMES if a in names]
