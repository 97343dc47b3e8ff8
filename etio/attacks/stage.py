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

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import EtioInputError
from .attack_model import AttackModelSpec
from .memguard import MemGuardSettings, attack_with_noise_budget, defend, defended_statistics
from .mlleaks import VARIANTS, draw_tuples, run_mlleaks, train_top3_models, tuples_per_repeat
from .oak17 import SHOKRI_ATTACK_MODEL, run_oak17
from .outputs import ModelOutputs, derived_seed, generator_for
from .settings import ATTACK_NAMES, MLLEAK_NAMES, AttackSettings
from .threshold import run_threshold


@dataclass(frozen=True)
class ConfigView:
    """What the attacks need to know about one configuration besides its model outputs."""

    key: str
    model_ids_by_repeat: list[list[int]]
    num_classes: int
    loss: str
    train_loss: float | None = None   # the threshold attack's tau (trace column TrainLoss)


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
    if "memguard" in attacks:
        if per_repeat < 4:
            problems.append(f"MemGuard needs at least 4 models per repeat (target, shadow, two non-member models); "
                            f"{view.key} has {per_repeat}")
        elif settings.memguard_targets > min(tuples_per_repeat(len(view.model_ids_by_repeat), settings.mlleak_tuples)):
            problems.append(f"memguard_targets = {settings.memguard_targets} exceeds the ML-Leaks tuples per repeat "
                            f"of {view.key}")
    if "oak17" in attacks:
        first = view.model_ids_by_repeat[0] if view.model_ids_by_repeat else []
        if len(first) < 2:
            problems.append(f"Oak17 needs a target and at least one shadow in the first repeat; {view.key} has "
                            f"{len(first)} model(s)")
        elif settings.oak17_shadows > len(first) - 1:
            problems.append(f"oak17_shadows = {settings.oak17_shadows} but {view.key} has only {len(first) - 1} "
                            f"other models in its first repeat")
    if "threshold" in attacks and (view.train_loss is None or not math.isfinite(view.train_loss)):
        problems.append(f"the threshold attack needs the configuration's TrainLoss; {view.key} has none")
    return problems


# --------------------------------------------------------------------------------------
# One configuration
# --------------------------------------------------------------------------------------

def mlleak_tuples(view: ConfigView, settings: AttackSettings) -> list[tuple[int, int, int]]:
    """The configuration's (target, shadow, nm) tuples; MemGuard defends targets drawn from the same list."""
    return draw_tuples(view.model_ids_by_repeat, settings.mlleak_tuples, derived_seed(settings.seed, view.key, "tuples"))


def attack_configuration(view: ConfigView, outputs: ModelOutputs, attacks: Sequence[str], settings: AttackSettings,
                         on_result: Callable[[str, dict], None]) -> None:
    """Run ``attacks`` on one configuration; ``on_result(attack, result)`` after each."""
    mlleak = [a for a in attacks if a in MLLEAK_NAMES]
    if mlleak:
        start = time.perf_counter()
        spec = AttackModelSpec(epochs=settings.mlleak_epochs)
        results = run_mlleaks(outputs, mlleak_tuples(view, settings), mlleak, spec,
                              generator_for(settings.seed, view.key, "mlleak", *mlleak))
        seconds = time.perf_counter() - start
        for name in mlleak:
            on_result(name, {**results[name], "seconds": seconds / len(mlleak)})
    if "oak17" in attacks:
        start = time.perf_counter()
        first = view.model_ids_by_repeat[0]
        shadows = first[1:1 + settings.oak17_shadows] if settings.oak17_shadows else first[1:]
        spec = SHOKRI_ATTACK_MODEL if settings.oak17_epochs == SHOKRI_ATTACK_MODEL.epochs else \
            AttackModelSpec(**{**SHOKRI_ATTACK_MODEL.__dict__, "epochs": settings.oak17_epochs})
        result = run_oak17(outputs, first[0], shadows, view.num_classes, spec, settings.oak17_seeds,
                           settings.seed, view.key)
        on_result("oak17", {**result, "seconds": time.perf_counter() - start})
    if "threshold" in attacks:
        start = time.perf_counter()
        result = run_threshold(outputs, view.model_ids_by_repeat, view.loss, float(view.train_loss))
        on_result("threshold", {**result, "seconds": time.perf_counter() - start})
    if "memguard" in attacks:
        start = time.perf_counter()
        result = run_memguard(view, outputs, settings)
        on_result("memguard", {**result, "seconds": time.perf_counter() - start})


def run_memguard(view: ConfigView, outputs: ModelOutputs, settings: AttackSettings) -> dict:
    """MemGuard on ``memguard_targets`` targets per repeat, each against both top-3 attack types.

    The attacker's model is the top-3 ML-Leaks model of the target's tuple (t, s, nm); the
    defender's model is a top-3 ML-Leaks model with the target as its own shadow and a
    fourth model nm' of the same repeat as non-members (nm' differs from s and nm, so the
    two sides never share non-members). Members are the target's training subset, non-
    members the whole test set. Attack types: without and with the label feature.
    """
    tuples = mlleak_tuples(view, settings)
    rng = np.random.default_rng(derived_seed(settings.seed, view.key, "memguard-defence"))
    counts = tuples_per_repeat(len(view.model_ids_by_repeat), settings.mlleak_tuples)
    model_tuples, targets = [], []
    first = 0
    for ids, count in zip(view.model_ids_by_repeat, counts):
        for t, s, nm in tuples[first:first + settings.memguard_targets]:
            candidates = [m for m in ids if m not in (t, s, nm)]
            nm_defence = int(rng.choice(candidates))
            model_tuples += [(t, s, nm), (t, t, nm_defence)]
            targets.append(t)
        first += count
    variants = ["top3", "top3_l"]
    spec = AttackModelSpec(epochs=settings.mlleak_epochs)
    models = train_top3_models(outputs, model_tuples, variants, spec,
                               generator_for(settings.seed, view.key, "memguard-models"))
    n_var = len(variants)
    attack_idx = [(2 * k) * n_var + j for k in range(len(targets)) for j in range(n_var)]
    defence_idx = [(2 * k + 1) * n_var + j for k in range(len(targets)) for j in range(n_var)]
    logits = torch.stack([torch.cat([outputs.on_subset(t), outputs.on_test([t])[0]])
                          for t in targets for _ in variants])
    labels = torch.stack([torch.cat([outputs.labels_of(t), outputs.test_y]) for t in targets for _ in variants])
    with_label = torch.tensor([VARIANTS[v].with_label for _ in targets for v in variants], device=outputs.device)
    n_members = outputs.subset_size
    is_member = torch.zeros(logits.shape[1], dtype=torch.bool, device=outputs.device)
    is_member[:n_members] = True
    mg = MemGuardSettings(max_iteration=settings.memguard_max_iteration, epsilon=settings.memguard_epsilon)
    defended = defend(logits, labels, models.select(defence_idx), with_label, mg)
    original = torch.softmax(logits, -1)
    mem, non = attack_with_noise_budget(models.select(attack_idx), original, defended, labels, with_label,
                                        is_member.expand_as(labels), mg.epsilon)
    undefended_mem, undefended_non = attack_with_noise_budget(
        models.select(attack_idx), original, _undefended(defended, original), labels, with_label,
        is_member.expand_as(labels), mg.epsilon)
    mem_acc, non_acc = float(mem.mean()), float(non.mean())
    label_kept = bool((defended.probs.argmax(-1) == original.argmax(-1)).all())
    return {
        "MemguardMemberAcc": mem_acc,
        "MemguardNonmemberAcc": non_acc,
        "MemguardAcc": (mem_acc + non_acc) / 2,
        **defended_statistics(defended.probs, labels, is_member, view.loss),
        "undefended": {"MemberAcc": float(undefended_mem.mean()), "NonmemberAcc": float(undefended_non.mean()),
                       "Acc": float((undefended_mem.mean() + undefended_non.mean()) / 2)},
        "targets": targets,
        "tuples": [list(t) for t in model_tuples],
        "attack_types": variants,
        "epsilon": mg.epsilon,
        "steps": defended.steps,
        "defended_fraction": float((defended.rounds_succeeded > 0).double().mean()),
        "labels_unchanged": label_kept,
    }


def _undefended(defended, original):
    from .memguard import Defended

    return Defended(original, defended.defence_before, defended.defence_before,
                    torch.zeros_like(defended.rounds_succeeded), 0)


# --------------------------------------------------------------------------------------
# A whole store
# --------------------------------------------------------------------------------------

def view_of(store, key: str) -> ConfigView:
    rec = store.record(key)
    stats = store.stats(key) or {}
    train_loss = stats.get("TrainLoss")
    train_loss = None if train_loss is None or (isinstance(train_loss, float) and math.isnan(train_loss)) \
        else float(train_loss)
    return ConfigView(key=key, model_ids_by_repeat=[list(rec.model_ids(r)) for r in range(rec.n_repeats)],
                      num_classes=int(rec.num_classes), loss=str(rec.loss), train_loss=train_loss)


def run_attack_stage(store, attacks: Sequence[str], settings: AttackSettings, device: str = "cpu",
                     progress: Callable[[str], None] | None = None) -> dict:
    """Fill the attack results of every configuration of ``store``; rewrite ``traces.csv``.

    Returns a summary: configurations, attacks computed / already stored, seconds.
    """
    for a in attacks:
        if a not in ATTACK_NAMES:
            raise EtioInputError(f"unknown attack {a!r}; known attacks: {', '.join(ATTACK_NAMES)}")
    keys = store.keys()
    if not keys:
        raise EtioInputError(f"the trace store {store_path(store)} has no completed configuration to attack")
    views = {key: view_of(store, key) for key in keys}
    problems = [p for key in keys for p in requirement_problems(views[key], attacks, settings)]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise EtioInputError(problems[0] + more)
    computed, reused, start = 0, 0, time.perf_counter()
    timing: dict[str, float] = {}
    for key in keys:
        todo = [a for a in attacks if store.read_attack(key, a) is None]
        reused += len(attacks) - len(todo)
        if todo:
            try:
                ensemble = store.ensemble(key, device)
            except FileNotFoundError as exc:
                raise EtioInputError(f"configuration {key}: trained models missing from the trace store ({exc})") from None
            outputs = ModelOutputs(store.splits(key), ensemble, device)

            def write(name: str, result: dict, key=key) -> None:
                nonlocal computed
                store.write_attack(key, name, result)
                timing[name] = timing.get(name, 0.0) + float(result.get("seconds", 0.0))
                computed += 1

            attack_configuration(views[key], outputs, todo, settings, write)
        if progress:
            progress(key)
    store.write_traces_csv()
    return {"configurations": len(keys), "computed": computed, "reused": reused,
            "seconds": time.perf_counter() - start, "seconds_by_attack": timing}


def store_path(store) -> str:
    return str(getattr(store, "root", getattr(store, "path", "")))
