"""``etio bench attacks``: where the attack stage's time goes, per attack and per phase.

The attacks of a few configurations of a trace store run in this process exactly as the stage
runs them (:func:`etio.attacks.stage.attack_configuration`), nothing stored. Two accounts of
the same seconds are kept:

- per attack: the seconds each attack's result reports (the attack models trained in one shared
  stack are charged to the attacks that use them, by model count, as the stage does);
- per phase: the seconds spent inside the model queries, the attack-model training, MemGuard's
  noise search, and the rest (scoring, ROC metrics, per-example tables: "scoring and
  bookkeeping"), timed by wrapping those functions while the benchmark runs
  (:class:`etio.bench.checks.CheckTimer`).

Every figure is CPU time (the attacks run one torch thread, in the calling thread): a busy machine
stretches wall time many times over (measured: 12× at a load average of 15 on 2 cores) and CPU time
much less. The phases are timed on the thread's CPU clock; an attack's CPU seconds are its share of
its configuration's CPU time, shared as the stage's own wall-clock account shares it. The wall time
of the whole is printed too, and the 1-minute load average, sampled after every configuration,
beside every figure.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

#: The phases timed, as (module, attribute) pairs in :class:`~etio.bench.checks.CheckTimer`'s form.
PHASES: dict[str, tuple[tuple[str, str], ...]] = {
    "queries": (("etio.attacks.outputs", "ModelOutputs._query"),
                ("etio.attacks.outputs", "ModelOutputs._query_each"),
                ("etio.attacks.outputs", "ModelOutputs.forward_each")),
    "attack-model training": (("etio.attacks.attack_model", "train_attack_models"),),
    "MemGuard search": (("etio.attacks.memguard", "defend"),),
}
REST = "scoring and bookkeeping"


@dataclass
class AttackBenchmark:
    """What :func:`benchmark_attacks` measured, summed over ``keys``."""

    keys: list[str]
    device: str
    threads: int
    wall_s: float = 0.0
    cpu_s: float = 0.0
    by_attack: dict[str, float] = field(default_factory=dict)
    by_phase: dict[str, float] = field(default_factory=dict)
    load: list[float] = field(default_factory=list)

    @property
    def load_average(self) -> float:
        return sum(self.load) / len(self.load) if self.load else float("nan")

    def per_configuration(self, seconds: float) -> float:
        return seconds / max(len(self.keys), 1)

    def share(self, seconds: float) -> float:
        return seconds / self.cpu_s if self.cpu_s > 0 else float("nan")


def spread(keys: list[str], count: int) -> list[str]:
    """``count`` of ``keys`` spread evenly over the list (all of them when ``count`` ≥ their number)."""
    if count >= len(keys):
        return list(keys)
    return [keys[(i * len(keys)) // count] for i in range(count)]


def benchmark_attacks(store, settings, keys: list[str], attacks, device: str = "cpu",
                      threads: int = 1) -> AttackBenchmark:
    """Run ``attacks`` on ``keys`` of ``store`` with ``settings`` (nothing stored) and time them.

    The first configuration is run once untimed first (imports and first-use costs are not the stage's)."""
    from etio.attacks.outputs import ModelOutputs
    from etio.attacks.stage import attack_configuration, view_of

    result = AttackBenchmark(list(keys), str(device), threads)
    timer = _phase_timer()

    def run(key: str, record) -> None:
        outputs = ModelOutputs(store.splits(key), store.ensemble(key, device), device)
        attack_configuration(view_of(store, key), outputs, list(attacks), settings, record, threads)

    if keys:
        run(keys[0], lambda name, r: None)
    with timer:
        for key in keys:
            reported: dict[str, float] = {}
            wall, cpu = time.perf_counter(), time.thread_time()
            run(key, lambda name, r: reported.__setitem__(name, float(r.get("seconds", 0.0))))
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            result.wall_s += wall
            result.cpu_s += cpu
            total = sum(reported.values()) or 1.0
            for name, seconds in reported.items():
                result.by_attack[name] = result.by_attack.get(name, 0.0) + cpu * seconds / total
            result.load.append(os.getloadavg()[0])
    result.by_phase = dict(timer.seconds)
    result.by_phase[REST] = max(0.0, result.cpu_s - sum(timer.seconds.values()))
    return result


def _phase_timer():
    """A :class:`~etio.bench.checks.CheckTimer` over :data:`PHASES` on the thread's CPU clock."""
    from etio.bench.checks import CheckTimer

    class PhaseTimer(CheckTimer):
        @contextmanager
        def timing(self, category: str) -> Iterator[None]:
            outermost = self._depth == 0
            self._depth += 1
            start = time.thread_time()
            try:
                yield
            finally:
                self._depth -= 1
                if outermost:
                    self.seconds[category] += time.thread_time() - start
                    self.calls[category] += 1

    return PhaseTimer(PHASES)


def format_benchmark(r: AttackBenchmark) -> list[str]:
    """The lines ``etio bench attacks`` prints."""
    load = f"load {r.load_average:.2f}"
    lines = [f"{len(r.keys)} configurations on {r.device}, {r.threads} torch thread(s); CPU seconds per "
             f"configuration, share of the attack stage's CPU time, 1-minute load average"]
    for title, seconds_by in (("per attack:", r.by_attack), ("per phase:", r.by_phase)):
        lines.append(title)
        for name, seconds in seconds_by.items():
            lines.append(f"  {name:24s} {r.per_configuration(seconds):8.3f} s/configuration "
                         f"{100 * r.share(seconds):5.1f} %  {load}")
    lines.append(f"  {'all':24s} {r.per_configuration(r.cpu_s):8.3f} s/configuration (wall "
                 f"{r.per_configuration(r.wall_s):.3f} s)  {load}")
    return lines
