"""The attack stage: every attack on every configuration of a trace store.

traces (trained models) -> **attacks** -> trace table with attack columns -> graphs.

For each configuration the stage queries the stored models (:class:`ModelOutputs`), runs
the requested attacks and writes each attack's result with ``store.write_attack`` as soon
as it is known; an attack whose result is already stored is skipped, so an interrupted
run resumes where it stopped. At the end ``traces.csv`` is rewritten from the store.

The attacks are the registered families (:mod:`etio.attacks.base`), asked in run order; the
stage trains each configuration's one batch of attack models and names no attack itself.
Inputs are checked once, before any work: attack names, and for every configuration
whether it has the models (and, for the threshold attack, the ``TrainLoss``) the attacks
need. Seeds are derived per (configuration, attack), so a resumed run, or one attack run
on its own, gives the same numbers as a complete run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from etio import __version__
from etio.core.errors import EtioInputError, check_choice
from etio.attacks.attack_model import AttackModelSpec
from etio.attacks.base import AttackModels, ConfigView, get_attack, list_attacks
from etio.attacks.mlleaks import train_requested_models
from etio.attacks.outputs import ModelOutputs, derived_seed, torch_threads
from etio.attacks.settings import ALL_ATTACK_NAMES, AttackSettings


# --------------------------------------------------------------------------------------
# Checks at the edge
# --------------------------------------------------------------------------------------

def _chosen(attacks: Sequence[str]) -> list:
    """(attack family, its requested names in the order asked) for every family asked for, in run order."""
    chosen = [(attack, [a for a in attacks if a in attack.names]) for attack in list_attacks()]
    return [(attack, names) for attack, names in chosen if names]


def requirement_problems(view: ConfigView, attacks: Sequence[str], settings: AttackSettings) -> list[str]:
    """Why ``attacks`` cannot run on ``view`` (empty list: they can); a problem two families share is named once."""
    problems = [p for attack, names in _chosen(attacks) for p in attack.problems(view, names, settings)]
    return list(dict.fromkeys(problems))


# --------------------------------------------------------------------------------------
# One configuration
# --------------------------------------------------------------------------------------

def attack_configuration(view: ConfigView, outputs: ModelOutputs, attacks: Sequence[str], settings: AttackSettings,
                         on_result: Callable[[str, dict], None], threads: int = 1) -> None:
    """Run ``attacks`` on one configuration with ``threads`` torch threads; ``on_result(attack, result)`` after each.

    Every attack model the requested attacks need (ML-Leaks tuples x variants, MemGuard's
    attacker and defender models) is trained in one batch. Each is seeded by its own
    (configuration, tuple, variant), so MemGuard's attacker is the very top-3 ML-Leaks model
    of its tuple whether or not ML-Leaks runs in the same call.
    """
    with torch_threads(threads):
        _attack_configuration(view, outputs, attacks, settings, on_result)


def _attack_configuration(view, outputs, attacks, settings, on_result) -> None:
    chosen = _chosen(attacks)
    requests: list = [r for attack, names in chosen for r in attack.requests(view, names, settings)]
    requests = list(dict.fromkeys(requests))
    batch = None
    if requests:
        start = time.perf_counter()
        spec = AttackModelSpec(epochs=settings.mlleak_epochs)
        models, data = train_requested_models(
            outputs, requests, spec,
            lambda r: derived_seed(settings.seed, view.key, "attack-model", *r[0], r[1]))
        batch = AttackModels(requests, models, data, spec.epochs, (time.perf_counter() - start) / len(requests))
    for attack, names in chosen:
        attack.run(view, outputs, names, settings, batch, on_result)


# --------------------------------------------------------------------------------------
# A whole store: the stage's entry points. check_attack_inputs (before any work),
# attack_units (the units still to run), run_attack_unit (one unit, wherever an executor
# runs it), finish_attacks (traces.csv and provenance, once). etio.pipeline.stages.attacks_on
# runs them on an executor; etio attack, etio reproduce and the tests go through it.
# --------------------------------------------------------------------------------------

def view_of(store, key: str) -> ConfigView:
    rec = store.record(key)
    stats = store.stats(key) or {}
    train_loss = stats.get("TrainLoss")
    train_loss = None if train_loss is None or (isinstance(train_loss, float) and math.isnan(train_loss)) \
        else float(train_loss)
    wd = rec.identity.get("WeightDecay")
    return ConfigView(key=key, model_ids_by_repeat=[list(rec.model_ids(r)) for r in range(rec.n_repeats)],
                      num_classes=int(rec.num_classes), loss=str(rec.loss), train_loss=train_loss,
                      weight_decay=None if wd is None else float(wd), dataset=str(rec.dataset),
                      adv_eps=float(rec.identity.get("AdvEps", 0.0) or 0.0))


def check_attack_inputs(store, attacks: Sequence[str], settings: AttackSettings) -> list[str]:
    """The store's configurations, once every check on names and requirements has passed."""
    for a in attacks:
        check_choice("attack", a, ALL_ATTACK_NAMES)
    keys = store.keys()
    if not keys:
        raise EtioInputError(f"the trace store {store_path(store)} has no completed configuration to attack")
    if hasattr(store, "meta"):
        from etio.traces.stage import check_complete

        keys = check_complete(store, "attack")
    if hasattr(store, "require_intact"):
        for key in keys:
            store.require_intact(key)
    problems = [p for key in keys for p in requirement_problems(view_of(store, key), attacks, settings)]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise EtioInputError(problems[0] + more)
    return keys


@dataclass(frozen=True)
class AttackUnit:
    """One configuration's attacks: the unit executors schedule. ``keys``: its configuration."""

    unit_id: str
    keys: tuple[str, ...]


def attack_units(store, attacks: Sequence[str], settings: AttackSettings) -> list[AttackUnit]:
    """The configurations (one unit each, named by its key) with a requested attack not stored under
    these settings."""
    current = json.loads(json.dumps(settings.to_dict()))  # as stored: JSON types
    return [AttackUnit(key, (key,)) for key in store.keys() if _todo(store, key, attacks, current)]


def _todo(store, key: str, attacks: Sequence[str], current: dict, warn: bool = True) -> list[str]:
    # A stored result counts only if it was computed with these settings, holds what its family's
    # results hold since they last changed meaning (Attack.result_keys), and its per-example
    # scores file is intact; after a change of the [attacks] table it is recomputed rather
    # than relabelled. A damaged result is reported once, by the planner (attack_units), in the
    # user's process: the unit that recomputes it (maybe in a worker) reads it quietly.
    return [a for a in attacks if not _is_current(result := store.read_attack(key, a, warn=warn), current)
            or not all(k in result for k in get_attack(a).result_keys)
            or ("scores_sha256" in result and not store.scores_intact(key, result["scores_sha256"], a))]


def run_attack_unit(store, key: str, attacks: Sequence[str], settings: AttackSettings, device: str = "cpu",
                    threads: int = 1) -> dict[str, float]:
    """Run the attacks of one configuration not yet stored; returns the seconds of each attack computed.

    ``store`` is a trace store or its directory (a unit run in another process opens it there).
    """
    if not hasattr(store, "keys"):
        from etio.traces.store import open_store

        store = open_store(store)
    todo = _todo(store, key, attacks, json.loads(json.dumps(settings.to_dict())), warn=False)
    seconds: dict[str, float] = {}
    if not todo:
        return seconds
    try:
        ensemble = store.ensemble(key, device)
    except FileNotFoundError as exc:
        raise EtioInputError(f"configuration {key}: trained models missing from the trace store ({exc})") from None
    outputs = ModelOutputs(store.splits(key), ensemble, device)

    def write(name: str, result: dict) -> None:
        if "scores" in result:     # the per-example scores first: the result file marks the attack done
            result = dict(result)
            scores = result.pop("scores")   # only to the scores file, not also (as text) into the result
            result["scores_sha256"] = store.write_scores(key, scores, name)
        store.write_attack(key, name, {**result, "settings": settings.to_dict(), "device": str(device),
                                       "etio": __version__})
        seconds[name] = float(result.get("seconds", 0.0))

    attack_configuration(view_of(store, key), outputs, todo, settings, write, threads)
    return seconds


def finish_attacks(store, attacks: Sequence[str], settings: AttackSettings, device: str = "cpu",
                   extra: dict | None = None) -> None:
    """Rewrite ``traces.csv`` with the stored attack results, and the attack stage's provenance."""
    store.write_traces_csv(extra_provenance={"attack_stage": {
        "attacks": list(attacks), "settings": settings.to_dict(), "device": str(device),
        "seeds": "derived per (configuration, attack, tuple, variant) from settings.seed (etio.attacks.outputs.derived_seed)",
        **(extra or {}),
    }})


def _is_current(result: dict | None, settings: dict) -> bool:
    return result is not None and result.get("settings") == settings


def store_path(store) -> str:
    return str(getattr(store, "root", getattr(store, "path", "")))
