"""Small trained ensembles for the attack tests, shaped like a trace-store configuration.

A Gaussian-mixture classification task (10 overlapping classes) and one-hidden-layer MLPs
trained to memorise their tiny subsets: a clearly overfit configuration. The same models
paired with a *fresh* pool (subset rows that no model has seen) give a configuration
whose "members" and non-members come from the same unseen distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from etio.attacks.outputs import ModelOutputs, torch_threads
from etio.attacks.stage import ConfigView


@dataclass
class Splits:
    pool_x: torch.Tensor
    pool_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    subsets: np.ndarray


class StackedEnsemble:
    """``n`` one-hidden-layer ReLU MLPs with stacked weights."""

    def __init__(self, w1: torch.Tensor, w2: torch.Tensor) -> None:
        self.w1, self.w2 = w1, w2

    def logits(self, model_ids, x):
        idx = torch.tensor(model_ids) - 1
        h = torch.relu(torch.einsum("nd,mdh->mnh", x, self.w1[idx]))
        return torch.bmm(h, self.w2[idx])

    def logits_each(self, model_ids, x):
        """Model ``model_ids[i]`` on its own inputs ``x[i]`` (differentiable in ``x``)."""
        idx = torch.tensor(model_ids) - 1
        return torch.bmm(torch.relu(torch.bmm(x, self.w1[idx])), self.w2[idx])


def gaussian_task(n: int, generator: torch.Generator, dim: int = 20, classes: int = 10, spread: float = 0.45):
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(12345)) * spread
    y = torch.randint(classes, (n,), generator=generator)
    x = centres[y] + torch.randn(n, dim, generator=generator)
    return x, y


def train_ensemble(x_sets: torch.Tensor, y_sets: torch.Tensor, loss: str, width: int = 128, steps: int = 300,
                   seed: int = 0) -> StackedEnsemble:
    """Full-batch Adam on every model's own subset (``x_sets``: ``[M, s, d]``)."""
    g = torch.Generator().manual_seed(seed)
    m, _, d = x_sets.shape
    classes = 10
    w1 = (torch.randn(m, d, width, generator=g) / d ** 0.5).requires_grad_()
    w2 = (torch.randn(m, width, classes, generator=g) / width ** 0.5).requires_grad_()
    opt = torch.optim.Adam([w1, w2], lr=0.01)
    onehot = torch.nn.functional.one_hot(y_sets, classes).float()
    for _ in range(steps):
        out = torch.bmm(torch.relu(torch.bmm(x_sets, w1)), w2)
        if loss == "ce":
            value = torch.nn.functional.cross_entropy(out.reshape(-1, classes), y_sets.reshape(-1))
        else:
            value = ((torch.softmax(out, -1) - onehot) ** 2).sum(-1).mean()
        opt.zero_grad()
        value.backward()
        opt.step()
    return StackedEnsemble(w1.detach(), w2.detach())


@dataclass
class SyntheticConfig:
    view: ConfigView
    splits: Splits
    ensemble: StackedEnsemble
    fresh_splits: Splits      # same subset rows, but drawn from a pool no model has seen
    train_acc: float
    test_acc: float

    def outputs(self) -> ModelOutputs:
        return ModelOutputs(self.splits, self.ensemble)

    def unseen_outputs(self) -> ModelOutputs:
        return ModelOutputs(self.fresh_splits, self.ensemble)

    def unseen_view(self) -> ConfigView:
        """tau of the threshold attack measured on the 'members' (fresh points), as TrainLoss would be."""
        from etio.attacks.threshold import per_sample_loss

        out = self.unseen_outputs()
        losses = [per_sample_loss(out.on_subset(m), out.labels_of(m), self.view.loss).mean()
                  for ids in self.view.model_ids_by_repeat for m in ids]
        return ConfigView(self.view.key + "-unseen", self.view.model_ids_by_repeat, 10, self.view.loss,
                          float(torch.stack(losses).mean()))


def synthetic_config(loss: str = "ce", repeats: int = 3, per_repeat: int = 5, subset: int = 100,
                     n_test: int = 500, seed: int = 0) -> SyntheticConfig:
    with torch_threads(1):
        return _synthetic_config(loss, repeats, per_repeat, subset, n_test, seed)


def _synthetic_config(loss, repeats, per_repeat, subset, n_test, seed) -> SyntheticConfig:
    g = torch.Generator().manual_seed(seed)
    pool_size = per_repeat * subset
    pool_x, pool_y = gaussian_task(pool_size, g)
    test_x, test_y = gaussian_task(n_test, g)
    fresh_x, fresh_y = gaussian_task(pool_size, g)
    rng = np.random.default_rng(seed)
    subsets = np.concatenate([rng.permutation(pool_size).reshape(per_repeat, subset) for _ in range(repeats)])
    idx = torch.as_tensor(subsets)
    ensemble = train_ensemble(pool_x[idx], pool_y[idx], loss, seed=seed)
    ids = [[r * per_repeat + k + 1 for k in range(per_repeat)] for r in range(repeats)]
    splits = Splits(pool_x, pool_y, test_x, test_y, subsets)
    fresh = Splits(fresh_x, fresh_y, test_x, test_y, subsets)
    all_ids = [m for r in ids for m in r]
    with torch.no_grad():
        train_out = torch.stack([ensemble.logits([m], pool_x[idx[m - 1]])[0] for m in all_ids])
        train_acc = float((train_out.argmax(-1) == pool_y[idx]).float().mean())
        test_acc = float((ensemble.logits(all_ids, test_x).argmax(-1) == test_y).float().mean())
    from etio.attacks.threshold import per_sample_loss

    train_loss = float(per_sample_loss(train_out, pool_y[idx], loss).mean())
    view = ConfigView(f"synthetic-{loss}-{seed}", ids, 10, loss, train_loss)
    return SyntheticConfig(view, splits, ensemble, fresh, train_acc, test_acc)


def make_digits_store(root, loss: str = "ce", widths=(32,), per_repeat: int = 4, subset: int = 60, repeats: int = 3,
                      steps: int = 150, seed: int = 0):
    """A real trace store (``etio.traces.store`` layout) of digits MLPs, one configuration per width."""
    with torch_threads(1):
        return _make_digits_store(root, loss, widths, per_repeat, subset, repeats, steps, seed)


def _make_digits_store(root, loss, widths, per_repeat, subset, repeats, steps, seed):
    from etio.traces.config import parse_config
    from etio.traces.datasets import load
    from etio.traces.store import ConfigRecord, create_store
    from etio.attacks.threshold import per_sample_loss

    raw = {"name": "attack-test", "dataset": "digits", "seed": seed, "repeats": repeats,
           "grid": {"arch": ["mlp_1hidden"], "width": list(widths), "train_size": [subset], "loss": [loss],
                    "weight_decay": [0.0005], "epochs": [steps], "scheduler": [False]}}
    config = parse_config(raw)
    store = create_store(root, config)
    data = load("digits")
    rng = np.random.default_rng(seed)
    used = per_repeat * subset
    subsets = np.concatenate([rng.permutation(len(data.pool_y))[:used].reshape(per_repeat, subset)
                              for _ in range(repeats)]).astype(np.int64)
    split_file = f"digits-s{subset}-N{repeats}-seed{seed}.npy"
    store.write_split(split_file, subsets)
    idx = torch.as_tensor(subsets)
    for tc in config.configurations():
        ens = train_ensemble(data.pool_x[idx], data.pool_y[idx], loss, width=tc.width, steps=steps, seed=seed)
        state = {"hidden.weight": ens.w1.transpose(1, 2).contiguous(), "output.weight": ens.w2.transpose(1, 2).contiguous()}
        with torch.no_grad():
            train_out = torch.stack([ens.logits([m], data.pool_x[idx[m - 1]])[0] for m in range(1, len(subsets) + 1)])
        stats = {"TrainLoss": float(per_sample_loss(train_out, data.pool_y[idx], loss).mean()),
                 "TrainAcc": float((train_out.argmax(-1) == data.pool_y[idx]).float().mean())}
        record = ConfigRecord(key=tc.key, identity=tc.identity(), dataset="digits", arch="mlp_1hidden", width=tc.width,
                              train_size=subset, loss=loss, n_repeats=repeats, models_per_repeat=per_repeat,
                              num_classes=10, input_shape=(64,), num_params=tc.width * 74, split_file=split_file)
        store.write_config(record, state, stats)
    return store
