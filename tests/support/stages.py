"""The trace and attack stages run in this process, through the one road every command takes
(:func:`etio.pipeline.stages.traces_on` / :func:`~etio.pipeline.stages.attacks_on` on the local
executor), with every unit here rather than in worker processes."""

from __future__ import annotations

from etio.pipeline.executors import ExecutorSettings
from etio.pipeline.stages import attacks_on, traces_on

#: The local executor with every unit in this process.
IN_PROCESS = ExecutorSettings(kind="local", processes=1)


def train(cfg, out, device: str = "cpu", **options):
    """Train every configuration of ``cfg`` not yet in the store at ``out``; returns the store."""
    return traces_on(cfg, out, IN_PROCESS, device, **options)


def attack(store, attacks, settings, device: str = "cpu", **options) -> dict:
    """Every attack of ``attacks`` on every configuration of ``store``; returns the stage's summary."""
    return attacks_on(store, attacks, settings, IN_PROCESS, device, **options)


def learn_one(traces, out, loss: str, weight_decay: float, attack: str, **settings):
    """The graph of ``loss`` x ``attack`` at ``weight_decay``, learned and written to ``out`` by the
    learning stage's road (:func:`etio.causal.learning.learn_all`, in this process)."""
    from etio.causal.learning import learn_all

    (graph,) = learn_all(traces, out, weight_decay, attacks=[attack], losses=[loss], workers=1, **settings)
    return graph
