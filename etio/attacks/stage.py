"""The attack stage: every attack on every configuration of a trace store.

traces (trained models) -> **attacks** -> trace table with attack columns -> graphs.

For each configuration the stage queries the stored models (:class:`ModelOutputs`), runs
the requested attacks and writes each attack's result with ``store.write_attack`` as soon
as it is known; an attack whose result is already stored is skipped, so an interrupted
run resumes where it stopped. At the end ``traces.csv`` is rewritten from the store.

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

import numpy as np
import torch

from etio import __version__
from etio.core.errors import EtioInputError, check_choice
from etio.core.schema import same_weight_decay
from etio.attacks.attack_model import AttackModelSpec
from etio.attacks.memguard import (MemGuardSettings, attack_with_noise_budget, defend, defended_member_scores,
                                   defended_statistics)
from etio.attacks.mlleaks import VARIANTS, draw_tuples, summarize_mlleaks, train_requested_models, tuples_per_repeat
from etio.attacks.oak17 import SHOKRI_ATTACK_MODEL, run_oak17
from etio.attacks.outputs import ModelOutputs, derived_seed, torch_threads
from etio.attacks.settings import ALL_ATTACK_NAMES, MLLEAK_NAMES, ROBUST_ATTACK_NAMES, AttackSettings
from etio.attacks.threshold import run_threshold
from etio.core.vocabulary import LOWFPR_STAGE


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


# --------------------------------------------------------------------------------------
# Checks at the edge
# --------------------------------------------------------------------------------------

def requirement_problems(view: ConfigView, attacks: Sequence[str], settings: AttackSettings) -> list[str]:
    """Why ``attacks`` cannot run on ``view`` (empty list: they can)."""
    problems = []
    per_repeat = min(len(ids) for ids in view.model_ids_by_repeat) if view.model_ids_by_repeat else 0
    mlleak = [a for a in attacks if a in MLLEAK_NAMES]
    if mlleak or "memguard" in attacks:
        if per_repeat < 3:
            problems.append(f"ML-Leaks needs at least 3 models per repeat (target, shadow, non-member model); "
                            f"{view.key} has {per_repeat}")
        else:
            wanted = max(tuples_per_repeat(len(view.model_ids_by_repeat), settings.mlleak_tuples))
            if wanted > per_repeat:
                problems.append(
                    f"mlleak_tuples = {settings.mlleak_tuples} needs {wanted} distinct targets per repeat, but "
                    f"{view.key} has {per_repeat} models per repeat ({len(view.model_ids_by_repeat)} repeats); "
                    f"use mlleak_tuples ≤ {per_repeat * len(view.model_ids_by_repeat)}")
    if "memguard" in attacks and per_repeat >= 3:
        if settings.memguard.targets > min(tuples_per_repeat(len(view.model_ids_by_repeat), settings.mlleak_tuples)):
            problems.append(f"[attacks.memguard] targets = {settings.memguard.targets} exceeds the ML-Leaks tuples per repeat "
                            f"of {view.key}")
    if "oak17" in attacks:
        first = view.model_ids_by_repeat[0] if view.model_ids_by_repeat else []
        if len(first) < 2:
            problems.append(f"Oak17 needs a target and at least one shadow in the first repeat; {view.key} has "
                            f"{len(first)} model(s)")
        elif settings.oak17_shadows > len(first) - 1:
            problems.append(f"oak17_shadows = {settings.oak17_shadows} but {view.key} has only {len(first) - 1} "
                            f"other models in its first repeat")
    if any(a in ROBUST_ATTACK_NAMES for a in attacks):
        ids = view.model_ids_by_repeat
        if not ids or min(len(r) for r in ids) < settings.robust.targets:
            problems.append(f"[attacks.robust] targets = {settings.robust.targets} exceeds the models per repeat of {view.key}")
    n_models = sum(len(ids) for ids in view.model_ids_by_repeat)
    if LOWFPR_STAGE in attacks and n_models < 3:
        problems.append(f"the low-FPR attacks need at least 3 models (a target and its references); {view.key} "
                        f"has {n_models}")
    if "threshold" in attacks and (view.train_loss is None or not math.isfinite(view.train_loss)):
        problems.append(f"the threshold attack needs the configuration's TrainLoss; {view.key} has none")
    return problems


# --------------------------------------------------------------------------------------
# One configuration
# --------------------------------------------------------------------------------------

def mlleak_tuples(view: ConfigView, settings: AttackSettings) -> list[tuple[int, int, int]]:
    """The configuration's (target, shadow, nm) tuples; MemGuard defends targets drawn from the same list."""
    return draw_tuples(view.model_ids_by_repeat, settings.mlleak_tuples, derived_seed(settings.seed, view.key, "tuples"))


def memguard_plan(view: ConfigView, settings: AttackSettings) -> list[tuple[tuple, tuple]]:
    """(attacker's tuple, defender's tuple) per defended target: the first ``memguard_targets`` tuples of each repeat.

    The defender's tuple is (t, t, nm'): the target is its own shadow, and nm' is a model of
    the same repeat other than the attacker's shadow and nm, so the two sides never share
    non-members. With only three models in a repeat there is no such model, and the
    attacker's shadow provides the defender's non-members (still disjoint from the
    attacker's non-members, as MemGuard requires).
    """
    tuples = mlleak_tuples(view, settings)
    rng = np.random.default_rng(derived_seed(settings.seed, view.key, "memguard-defence"))
    plan, first = [], 0
    for ids, count in zip(view.model_ids_by_repeat, tuples_per_repeat(len(view.model_ids_by_repeat),
                                                                       settings.mlleak_tuples)):
        for t, s, nm in tuples[first:first + settings.memguard.targets]:
            candidates = [m for m in ids if m not in (t, s, nm)] or [s]
            plan.append(((t, s, nm), (t, t, int(rng.choice(candidates)))))
        first += count
    return plan


def memguard_applies(view: ConfigView, settings: AttackSettings) -> bool:
    wds = settings.memguard.weight_decays
    return not wds or view.weight_decay is None or any(same_weight_decay(view.weight_decay, w) for w in wds)


TOP3_VARIANTS = ("top3", "top3_l")


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
    mlleak = [a for a in attacks if a in MLLEAK_NAMES]
    with_memguard = "memguard" in attacks and memguard_applies(view, settings)
    requests: list = [(t, v) for t in mlleak_tuples(view, settings) for v in mlleak] if mlleak else []
    plan = memguard_plan(view, settings) if with_memguard else []
    for attacker, defender in plan:
        requests += [(attacker, v) for v in TOP3_VARIANTS] + [(defender, v) for v in TOP3_VARIANTS]
    requests = list(dict.fromkeys(requests))
    if requests:
        start = time.perf_counter()
        spec = AttackModelSpec(epochs=settings.mlleak_epochs)
        models, data = train_requested_models(
            outputs, requests, spec,
            lambda r: derived_seed(settings.seed, view.key, "attack-model", *r[0], r[1]))
        per_model = (time.perf_counter() - start) / len(requests)
        if mlleak:
            start = time.perf_counter()
            mine = [r for r in requests if r[1] in mlleak and r[0] in set(mlleak_tuples(view, settings))]
            index = {r: i for i, r in enumerate(requests)}
            results = summarize_mlleaks(mine, models.select([index[r] for r in mine]),
                                        _select_data(data, [index[r] for r in mine]), mlleak, settings.lowfpr().roc)
            from etio.attacks.lowfpr import mlleak_scores_table

            for name in mlleak:
                results[name]["scores"] = mlleak_scores_table(outputs, results[name]["tuples"],
                                                              results[name]["scores"])
            share = (time.perf_counter() - start) / len(mlleak)
            for name in mlleak:
                n_models = sum(1 for r in mine if r[1] == name)
                on_result(name, {**results[name], "epochs": spec.epochs, "seconds": share + per_model * n_models})
    if "oak17" in attacks:
        start = time.perf_counter()
        first = view.model_ids_by_repeat[0]
        shadows = first[1:1 + settings.oak17_shadows] if settings.oak17_shadows else first[1:]
        spec = AttackModelSpec(**{**SHOKRI_ATTACK_MODEL.__dict__, "epochs": settings.oak17_epochs})
        result = run_oak17(outputs, first[0], shadows, view.num_classes, spec, settings.oak17_seeds,
                           settings.seed, view.key, settings.lowfpr().roc)
        on_result("oak17", {**result, "seconds": time.perf_counter() - start})
    if "threshold" in attacks:
        start = time.perf_counter()
        result = run_threshold(outputs, view.model_ids_by_repeat, view.loss, float(view.train_loss))
        on_result("threshold", {**result, "seconds": time.perf_counter() - start})
    robust = [a for a in attacks if a in ROBUST_ATTACK_NAMES]
    if robust:
        from etio.attacks.robust import run_robust_strategies

        start = time.perf_counter()
        box = None
        if view.dataset is not None:
            from etio.traces.datasets import dataset_info
            from etio.traces.robust import pixel_box

            box = pixel_box(dataset_info(view.dataset)).to(outputs.device)
        results = run_robust_strategies(outputs, view.model_ids_by_repeat, view.num_classes, robust, view.adv_eps,
                                        settings.robust, settings.seed, view.key, box)
        share = (time.perf_counter() - start) / len(robust)
        for name in robust:
            on_result(name, {**results[name], "seconds": share})
    if "memguard" in attacks:
        if not with_memguard:
            on_result("memguard", {"skipped": f"weight decay {view.weight_decay} not in memguard_weight_decays "
                                              f"{list(settings.memguard.weight_decays)}"})
        else:
            start = time.perf_counter()
            index = {r: i for i, r in enumerate(requests)}
            result = run_memguard(view, outputs, settings, plan, models, index)
            on_result("memguard", {**result, "seconds": time.perf_counter() - start + per_model * 4 * len(plan)})
    if LOWFPR_STAGE in attacks:
        from etio.attacks.lowfpr import run_lowfpr

        start = time.perf_counter()
        result = run_lowfpr(outputs, [m for ids in view.model_ids_by_repeat for m in ids], view.loss,
                            settings.lowfpr())
        on_result(LOWFPR_STAGE, {**result, "seconds": time.perf_counter() - start})


def _select_data(data, rows):
    from etio.attacks.mlleaks import AttackData

    return AttackData(data.train_x[rows], data.train_y[rows], data.eval_x[rows], data.eval_y[rows],
                      [data.in_dims[i] for i in rows])


def run_memguard(view: ConfigView, outputs: ModelOutputs, settings: AttackSettings, plan, models, index) -> dict:
    """MemGuard on every planned target (:func:`memguard_plan`), each against both top-3 attack types.

    The attacker's model is the top-3 ML-Leaks model of the target's tuple; the defender's
    a top-3 ML-Leaks model of (t, t, nm'). Members are the target's training subset, non-
    members the whole test set (or the first ``memguard_samples`` of each).
    """
    variants = TOP3_VARIANTS
    targets = [attacker[0] for attacker, _ in plan]
    attack_idx = [index[(attacker, v)] for attacker, _ in plan for v in variants]
    defence_idx = [index[(defender, v)] for _, defender in plan for v in variants]
    n_members = min(settings.memguard.samples or outputs.subset_size, outputs.subset_size)
    n_test = min(settings.memguard.samples or outputs.n_test, outputs.n_test)
    members, non_members = outputs.on_subsets([(t, t) for t in targets]), outputs.on_test(targets)   # batched
    logits = torch.stack([torch.cat([members[i, :n_members], non_members[i, :n_test]])
                          for i in range(len(targets)) for _ in variants])
    labels = torch.stack([torch.cat([outputs.labels_of(t)[:n_members], outputs.test_y[:n_test]])
                          for t in targets for _ in variants])
    with_label = torch.tensor([VARIANTS[v].with_label for _ in targets for v in variants], device=outputs.device)
    is_member = torch.zeros(logits.shape[1], dtype=torch.bool, device=outputs.device)
    is_member[:n_members] = True
    mg = MemGuardSettings(max_iteration=settings.memguard.max_iteration, epsilon=settings.memguard.epsilon)
    defended = defend(logits, labels, models.select(defence_idx), with_label, mg)
    original = torch.softmax(logits, -1)
    attackers = models.select(attack_idx)
    members = is_member.expand_as(labels)
    mem, non = attack_with_noise_budget(attackers, original, defended, labels, with_label, members, mg.epsilon)
    before_mem, before_non = attack_with_noise_budget(attackers, original, _undefended(defended, original), labels,
                                                      with_label, members, mg.epsilon)
    mem_acc, non_acc = float(mem.mean()), float(non.mean())
    # per-example scores against the defended outputs, pooled over targets and attack types
    from etio.attacks.lowfpr import pairs_table
    from etio.attacks.roc import roc_metrics, roc_trace_values

    score = defended_member_scores(attackers, original, defended, labels, with_label, mg.epsilon).float().cpu()
    member = members.cpu().numpy().astype(bool)
    roc_settings = settings.lowfpr().roc
    sets = [(t, k) for t in targets for k in range(len(variants))]
    metrics = roc_metrics(score.numpy().ravel(), member.ravel(), roc_settings,
                          groups=np.repeat([t for t, _ in sets], n_members + n_test))      # the AUC interval's groups
    point = [np.r_[outputs.rows(t)[:n_members].numpy(), np.arange(n_test)] for t, _ in sets]
    scores = pairs_table(np.repeat([t for t, _ in sets], n_members + n_test),
                         np.tile(np.r_[np.zeros(n_members), np.ones(n_test)], len(sets)), np.concatenate(point),
                         member.ravel(), {"score": score.numpy().ravel()},
                         {"attack_type": np.repeat([k for _, k in sets], n_members + n_test)})
    return {
        **roc_trace_values("Memguard", metrics, roc_settings.alphas),
        "roc": metrics,
        "scores": scores,
        "MemguardMemberAcc": mem_acc,
        "MemguardNonmemberAcc": non_acc,
        "MemguardAcc": (mem_acc + non_acc) / 2,
        **defended_statistics(defended.probs, labels, is_member, view.loss),
        "undefended": {"MemberAcc": float(before_mem.mean()), "NonmemberAcc": float(before_non.mean()),
                       "Acc": float((before_mem.mean() + before_non.mean()) / 2)},
        "targets": targets,
        "tuples": [[list(a), list(d)] for a, d in plan],
        "attack_types": list(variants),
        "members": n_members,
        "nonmembers": n_test,
        "epsilon": mg.epsilon,
        "max_iteration": mg.max_iteration,
        "iterations": defended.steps,
        "defended_fraction": float((defended.rounds_succeeded > 0).double().mean()),
        "labels_unchanged": bool((defended.probs.argmax(-1) == original.argmax(-1)).all()),
    }


def _undefended(defended, original):
    from etio.attacks.memguard import Defended

    return Defended(original, defended.defence_before, defended.defence_before,
                    torch.zeros_like(defended.rounds_succeeded), 0)


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
    # A stored result counts only if it was computed with these settings (and its per-example
    # scores file is intact); after a change of the [attacks] table it is recomputed rather
    # than relabelled. A damaged result is reported once, by the planner (attack_units), in the
    # user's process: the unit that recomputes it (maybe in a worker) reads it quietly.
    return [a for a in attacks if not _is_current(result := store.read_attack(key, a, warn=warn), current)
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
            result = {**result, "scores_sha256": store.write_scores(key, result.pop("scores"), name)}
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
