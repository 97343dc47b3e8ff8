"""The attack registry: one :class:`Attack` per attack family, in its family's module.

An attack family answers for one or more attack names (``--attacks``, ``[attacks] run``): ML-Leaks
for its four variants, the robust study for its strategies, the low-FPR attacks for ``lowfpr``.
The attack stage (:mod:`etio.attacks.stage`) asks every registered family, in run order, which
problems keep it from a configuration, which attack models it needs from the configuration's one
shared batch, and then runs it; the stage itself never names an attack.

Adding an attack: subclass :class:`Attack` in its module, call :func:`register_attack` once at the
module's end, and put the module in :data:`ATTACK_MODULES` (the run order). Its names and trace
columns come from the vocabulary (:mod:`etio.core.vocabulary`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

#: The attack families' modules, in the order their attacks run on a configuration.
ATTACK_MODULES = ("mlleaks", "oak17", "threshold", "robust", "memguard", "lowfpr")
_PACKAGE = "etio.attacks"
_REGISTRY: list["Attack"] = []


@dataclass(frozen=True)
class ConfigView:
    """What the attacks need to know about one configuration besides its model outputs."""

    key: str
    model_ids_by_repeat: list[list[int]]
    num_classes: int
    loss: str
    train_loss: float | None = None   # the threshold attack's tau (trace column TrainLoss)
    weight_decay: float | None = None
    dataset: str | None = None        # pixel range of the robust strategies' adversarial examples
    adv_eps: float = 0.0              # the models' PGD training budget (trace column AdvEps)


@dataclass(frozen=True)
class AttackModels:
    """The configuration's one batch of trained attack models (ML-Leaks tuples x variants and the
    attack models other families share with them), trained once by the stage.

    ``requests``: the ``((target, shadow, nm), variant)`` of each model, in training order;
    ``models`` and ``data`` the trained models and their data, row ``i`` for ``requests[i]``;
    ``epochs`` their training epochs; ``per_model`` the training seconds per model.
    """

    requests: list
    models: Any
    data: Any
    epochs: int
    per_model: float

    @property
    def index(self) -> dict:
        return {r: i for i, r in enumerate(self.requests)}


class Attack:
    """One attack family. Override :meth:`run`; :meth:`problems` and :meth:`requests` as needed.

    Every method receives ``names``: the family's attack names that were asked for, in the order
    they were asked for (never empty).
    """

    #: The attack names this family answers for.
    names: tuple[str, ...] = ()

    #: Keys every stored result of this family holds since its results last changed meaning: a result
    #: stored without them (by an earlier version) is recomputed rather than kept with stale columns.
    result_keys: tuple[str, ...] = ()

    def problems(self, view: ConfigView, names: Sequence[str], settings) -> list[str]:
        """Why the attacks ``names`` cannot run on ``view`` (empty list: they can)."""
        return []

    def requests(self, view: ConfigView, names: Sequence[str], settings) -> list:
        """The ``((target, shadow, nm), variant)`` attack models it needs from the shared batch."""
        return []

    def run(self, view: ConfigView, outputs, names: Sequence[str], settings, batch: AttackModels | None,
            on_result: Callable[[str, dict], None]) -> None:
        """Run the attacks ``names`` on one configuration; ``on_result(name, result)`` after each."""
        raise NotImplementedError


def register_attack(attack: Attack) -> Attack:
    """Add ``attack`` (an instance) to the registry; its names must be new."""
    taken = {n for a in _REGISTRY for n in a.names}
    clash = [n for n in attack.names if n in taken]
    if clash or not attack.names:
        raise ValueError(f"attack {type(attack).__name__}: names {list(attack.names)} empty or already registered")
    _REGISTRY.append(attack)
    return attack


def list_attacks() -> list[Attack]:
    """Every registered attack family, in run order (:data:`ATTACK_MODULES`, then registration)."""
    for module in ATTACK_MODULES:
        importlib.import_module(f"{_PACKAGE}.{module}")
    rank = {f"{_PACKAGE}.{m}": i for i, m in enumerate(ATTACK_MODULES)}
    order = {id(a): i for i, a in enumerate(_REGISTRY)}
    return sorted(_REGISTRY, key=lambda a: (rank.get(type(a).__module__, len(rank)), order[id(a)]))


def get_attack(name: str) -> Attack:
    """The attack family that answers for ``name``."""
    for attack in list_attacks():
        if name in attack.names:
            return attack
    from etio.core.errors import check_choice

    check_choice("attack", name, [n for a in list_attacks() for n in a.names])
    raise AssertionError(name)   # pragma: no cover  (check_choice raised)
