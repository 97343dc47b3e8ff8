"""Yeom et al.'s loss-threshold attack.

A point is called a member when the model's loss on it is at most the threshold tau, the
configuration's average training loss (``TrainLoss``); nothing is fitted. Every model of
every repeat is attacked: members are its training subset, non-members the whole test
set. Accuracies are averaged over the models of a repeat, then over repeats (all of them:
the authors' parser looked for repeat keys shifted by one).
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch

from etio.attacks.base import Attack, register_attack
from etio.attacks.outputs import ModelOutputs


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """CE on logits, or the squared error of the softmax against the one-hot label (summed over classes)."""
    if loss == "ce":
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.expand(*logits.shape[:-1]).reshape(-1), reduction="none",
        ).view(logits.shape[:-1])
    probs = torch.softmax(logits, dim=-1)
    onehot = torch.nn.functional.one_hot(labels, logits.shape[-1]).to(probs.dtype)
    return ((probs - onehot) ** 2).sum(dim=-1)


def run_threshold(outputs: ModelOutputs, model_ids_by_repeat: Sequence[Sequence[int]], loss: str,
                  tau: float) -> dict:
    """``ThresholdMemAcc``, ``ThresholdNonMemAcc``, ``ThresholdAcc`` (their mean) and ``Threshold`` = tau."""
    mem_by_repeat, non_by_repeat = [], []
    every = [m for ids in model_ids_by_repeat for m in ids]
    outputs.on_test(every), outputs.on_subsets([(m, m) for m in every])       # each one batched query
    for ids in model_ids_by_repeat:
        test_loss = per_sample_loss(outputs.on_test(ids), outputs.test_y, loss)          # [M, n_test]
        non = (test_loss > tau).double().mean(dim=1)
        own = outputs.on_subsets([(m, m) for m in ids])
        mem = torch.stack([(per_sample_loss(own[i], outputs.labels_of(m), loss) <= tau).double().mean()
                           for i, m in enumerate(ids)])
        mem_by_repeat.append(mem.cpu().numpy())
        non_by_repeat.append(non.cpu().numpy())
    mem_acc = float(np.mean([m.mean() for m in mem_by_repeat]))
    non_acc = float(np.mean([n.mean() for n in non_by_repeat]))
    return {
        "ThresholdMemAcc": mem_acc,
        "ThresholdNonMemAcc": non_acc,
        "ThresholdAcc": (mem_acc + non_acc) / 2,
        "Threshold": float(tau),
        "per_repeat": {"MemAcc": [float(m.mean()) for m in mem_by_repeat],
                       "NonMemAcc": [float(n.mean()) for n in non_by_repeat]},
    }


class Threshold(Attack):
    """Yeom et al.'s loss threshold at the configuration's TrainLoss."""

    names = ("threshold",)

    def problems(self, view, names, settings) -> list[str]:
        if view.train_loss is None or not math.isfinite(view.train_loss):
            return [f"the threshold attack needs the configuration's TrainLoss; {view.key} has none"]
        return []

    def run(self, view, outputs, names, settings, batch, on_result) -> None:
        start = time.perf_counter()
        result = run_threshold(outputs, view.model_ids_by_repeat, view.loss, float(view.train_loss))
        on_result("threshold", {**result, "seconds": time.perf_counter() - start})


register_attack(Threshold())
