"""LiRA and RMIA with query augmentations: LiRA against the per-augmentation Gaussians by hand, the
augmented queries against images augmented by hand, one augmentation as today's scores bit for bit,
a CIFAR-format store attacked with "auto", the plan's extra forward passes, and the setting's checks."""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import stats

from etio.attacks.lira import LIRA_VARIANTS, lira_scores
from etio.attacks.settings import QUERY_AUGMENTATIONS, parse_attack_settings
from etio.core.errors import EtioInputError
from etio.traces.datasets import augment_batch, dataset_info
from tests.support.repo import REPO

CIFAR_STUDY = """
name = "cifar-augment"
seed = 0
repeats = 2
synthetic_data = true

[training]
batch_size = 10
eval_batch_size = 100
lr = 0.05

[grid]
train_size = [20]
loss = ["ce"]
weight_decay = [0.0005]
epochs = [2]
scheduler = [false]

[datasets.cifar10]
arch = ["alexnetwol"]
width = [16]
pool_size = 60
test_size = 30

[attacks]
run = ["lowfpr"]
"""


def _on_augmented(outputs, model_ids, pool_rows, augmentations, info, **kwargs):
    """Every block of ``ModelOutputs.augmented_blocks`` put together: ``[A, M, X, C]``."""
    return torch.cat([logits for _, logits in outputs.augmented_blocks(model_ids, pool_rows, augmentations, info,
                                                                       **kwargs)], dim=2)


def _augmented_study(seed=0, augmentations=3, models=8, points=40):
    """φ ``[A, M, X]``: for augmentation a, N(μ_ax, s_a²) for non-members and N(μ_ax + shift_a, s_a²) for
    members, each point a member of half the models."""
    rng = np.random.default_rng(seed)
    inside = np.zeros((models, points), dtype=bool)
    for x in range(points):
        inside[rng.permutation(models)[: models // 2], x] = True
    shift, scale = rng.uniform(0.5, 2.0, augmentations), rng.uniform(0.5, 1.5, augmentations)
    mu = rng.normal(0, 2, size=(augmentations, 1, points))
    phi = rng.normal(mu + shift[:, None, None] * inside, scale[:, None, None])
    return phi, inside


def _global_sd(values, inside, side_in):
    resid, dof = 0.0, 0
    for y in range(values.shape[1]):
        v = np.array([values[m, y] for m in range(values.shape[0]) if inside[m, y] == side_in])
        if len(v):
            resid += ((v - v.mean()) ** 2).sum()
            dof += len(v) - 1
    return math.sqrt(resid / dof)


def _by_hand(phi, inside, t, x):
    """The four scores of target t on point x: per augmentation the references' median and sd (ddof 1) or
    the side's global σ; online the sum of the log likelihood ratios, offline the one-sided test of Σ z / √A."""
    others = [m for m in range(phi.shape[1]) if m != t]
    total = {v: 0.0 for v in LIRA_VARIANTS}
    for a in range(phi.shape[0]):
        values = phi[a]
        ins = np.array([values[m, x] for m in others if inside[m, x]])
        outs = np.array([values[m, x] for m in others if not inside[m, x]])
        m_in, m_out, s_in, s_out = np.median(ins), np.median(outs), np.std(ins, ddof=1), np.std(outs, ddof=1)
        g_in, g_out = _global_sd(values, inside, True), _global_sd(values, inside, False)
        v = values[t, x]
        total["online"] += stats.norm.logpdf(v, m_in, s_in) - stats.norm.logpdf(v, m_out, s_out)
        total["online_fixed"] += stats.norm.logpdf(v, m_in, g_in) - stats.norm.logpdf(v, m_out, g_out)
        total["offline"] += (v - m_out) / s_out
        total["offline_fixed"] += (v - m_out) / g_out
    n = phi.shape[0]
    for v in ("offline", "offline_fixed"):
        total[v] = -stats.norm.logsf(total[v] / math.sqrt(n))
    return total


@pytest.mark.parametrize("references", [0, 7])
def test_lira_with_augmentations_is_the_sum_of_the_per_augmentation_ratios(references):
    phi, inside = _augmented_study()
    scores = lira_scores(phi, inside, references)        # 0: all targets at once; 7: one target at a time
    for t in (0, 5):
        for x in range(phi.shape[2]):
            expected = _by_hand(phi, inside, t, x)
            for variant in LIRA_VARIANTS:
                assert scores[variant][t, x] == pytest.approx(expected[variant], abs=1e-9, rel=1e-9), (variant, t, x)


def test_one_augmentation_gives_the_unaugmented_scores_bit_for_bit():
    phi, inside = _augmented_study(seed=3, augmentations=1)
    for references in (0, 3):
        one, plain = lira_scores(phi, inside, references), lira_scores(phi[0], inside, references)
        for variant in LIRA_VARIANTS:
            assert np.array_equal(one[variant], plain[variant], equal_nan=True), variant
    # two identical augmentations: the same online evidence twice
    two = lira_scores(np.concatenate([phi, phi]), inside)
    plain = lira_scores(phi[0], inside)
    np.testing.assert_allclose(two["online"], 2 * plain["online"], rtol=1e-12, equal_nan=True)


def test_mirror_of_a_mirror_is_the_identity_and_a_shift_moves_the_image_one_pixel():
    info = dataset_info("cifar10")
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    centre = torch.full((5, 2), 4, dtype=torch.long)
    flip = torch.ones(5, dtype=torch.bool)
    mirrored = augment_batch(x, centre, flip, info)
    assert torch.equal(mirrored, x.flip(-1)) and not torch.equal(mirrored, x)
    assert torch.equal(augment_batch(mirrored, centre, flip, info), x)
    [right] = [a for a in QUERY_AUGMENTATIONS["mirror_shift"] if a.name == "shift_right"]
    [down] = [a for a in QUERY_AUGMENTATIONS["mirror_shift"] if a.name == "shift_down"]
    black = torch.tensor([-m / s for m, s in zip(info.mean, info.std)]).view(1, 3, 1)
    moved = augment_batch(x, torch.tensor([[4 - right.down, 4 - right.right]] * 5), ~flip, info)
    assert torch.equal(moved[..., 1:], x[..., :-1]) and torch.equal(moved[..., 0], black.expand(5, 3, 32))
    moved = augment_batch(x, torch.tensor([[4 - down.down, 4 - down.right]] * 5), ~flip, info)
    assert torch.equal(moved[..., 1:, :], x[..., :-1, :])


class _LinearModels:
    """Model m: logits = W_m · flattened image (a different linear map per model), to check which
    model saw which augmented image."""

    def __init__(self, models, classes=4, features=3 * 32 * 32):
        self.w = torch.randn(models, features, classes, generator=torch.Generator().manual_seed(1))

    def logits(self, model_ids, x):
        return torch.einsum("nf,mfc->mnc", x.reshape(len(x), -1), self.w[torch.tensor(model_ids) - 1])


def test_augmented_queries_are_every_model_on_every_point_augmented_by_hand():
    from etio.attacks.outputs import ModelOutputs
    from tests.support.ensembles import Splits

    info = dataset_info("cifar10")
    g = torch.Generator().manual_seed(2)
    splits = Splits(torch.randn(12, 3, 32, 32, generator=g), torch.zeros(12, dtype=torch.long),
                    torch.randn(5, 3, 32, 32, generator=g), torch.zeros(5, dtype=torch.long),
                    np.arange(12).reshape(3, 4))
    models = _LinearModels(3)
    outputs = ModelOutputs(splits, models)
    augmentations = QUERY_AUGMENTATIONS["mirror_shift"]
    rows = np.array([1, 5, 6, 11])
    for per_pass in (2048, 7):                       # blocks of points that cut augmentations apart or not
        got = _on_augmented(outputs, [3, 1], rows, augmentations, info, rows_per_pass=per_pass)
        assert got.shape == (10, 2, 4 + 5, 4)
        points = torch.cat([splits.pool_x[torch.as_tensor(rows)], splits.test_x])
        for a, aug in enumerate(augmentations):
            shifted = torch.full((9, 3, 40, 40), 0.0) + torch.tensor(
                [-m / s for m, s in zip(info.mean, info.std)]).view(1, 3, 1, 1)
            shifted[:, :, 4 + aug.down:36 + aug.down, 4 + aug.right:36 + aug.right] = points
            image = shifted[:, :, 4:36, 4:36]
            image = image.flip(-1) if aug.mirror else image
            torch.testing.assert_close(got[a], models.logits([3, 1], image), rtol=1e-5, atol=1e-4)


@pytest.fixture(scope="module")
def cifar_store(tmp_path_factory):
    """A store of one CIFAR-10 configuration (generated CIFAR files, 2 repeats × 3 AlexNetWOL models)."""
    from etio.pipeline.study import parse_study
    from tests.support.stages import train

    root = tmp_path_factory.mktemp("cifar-augment")
    study = parse_study(tomllib.loads(CIFAR_STUDY), "cifar-augment.toml")
    with pytest.warns(UserWarning, match="wrote generated cifar10 files"):
        return train(study.experiment, root / "store", data_dir=root / "data")


def test_a_cifar_store_is_attacked_with_the_mirror_by_default(cifar_store, tmp_path):
    import shutil

    from etio.attacks.lowfpr import run_lowfpr
    from etio.attacks.outputs import ModelOutputs
    from etio.attacks.stage import view_of
    from etio.pipeline.study import stage_settings
    from etio.traces.store import open_store
    from tests.support.stages import attack

    shutil.copytree(cifar_store.root, tmp_path / "store")
    store = open_store(tmp_path / "store")
    settings, _ = stage_settings(None, store)          # the road of `etio attack`: "auto" on CIFAR
    assert settings.lowfpr_augmentations == "mirror"
    assert attack(store, ["lowfpr"], settings)["computed"] == 1
    [key] = store.keys()
    result = store.read_attack(key, "lowfpr")
    assert result["augmentations"] == ["identity", "mirror"]
    assert result["settings"]["lowfpr_augmentations"] == "mirror"
    table = store.read_scores(key)
    assert len(table) == 6 * (60 + 30) and table[["model", "point", "test"]].duplicated().sum() == 0

    # against the queries without augmentation: the threshold keeps the identity, LiRA and RMIA change
    view = view_of(store, key)
    ids = [m for r in view.model_ids_by_repeat for m in r]
    outputs = ModelOutputs(store.splits(key), store.ensemble(key))
    lowfpr = settings.lowfpr()
    info = dataset_info("cifar10")
    plain = run_lowfpr(outputs, ids, "ce", replace(lowfpr, augmentations="auto"), None)["scores"]   # no dataset
    none = run_lowfpr(outputs, ids, "ce", replace(lowfpr, augmentations="none"), info)
    assert "augmentations" not in none
    assert none["scores"].tobytes() == plain.tobytes()
    stored = table.to_records(index=False)
    assert np.array_equal(stored["threshold"], plain["threshold"])
    assert not np.allclose(stored["lira_online_fixed"], plain["lira_online_fixed"], equal_nan=True)
    shifted = run_lowfpr(outputs, ids, "ce", replace(lowfpr, augmentations="mirror_shift"), info)
    assert shifted["augmentations"] == [a.name for a in QUERY_AUGMENTATIONS["mirror_shift"]]
    assert len(shifted["augmentations"]) == 10
    # φ of every query, reduced block by block (here 33, 33 and 24 points), is φ of the logits of all points at once
    from functools import partial

    from etio.attacks.lira import logit_confidence
    from etio.attacks.lowfpr import augmented_confidences, gather_logits, point_set

    points = point_set(outputs, ids)
    logits, labels = gather_logits(outputs, points)
    # every model queried on the shared pool rows at once: the same bits as each model on its own copy of them
    pool_x = outputs.splits.pool_x[torch.as_tensor(points.pool_rows)]
    with torch.no_grad():
        each = outputs.forward_each(ids, pool_x.unsqueeze(0).expand(len(ids), *pool_x.shape))
    assert torch.equal(logits[:, :len(points.pool_rows)], each)
    row_bytes = pool_x[0].numel() * pool_x.element_size()          # 7 rows per query: the same bits
    fresh = ModelOutputs(store.splits(key), store.ensemble(key))
    assert torch.equal(fresh.on_pool(ids, points.pool_rows, input_bytes=7 * row_bytes * len(ids)), each)
    fresh._query_each = None                                        # a model on a subset: from the pool's outputs
    on_subset = fresh.on_subsets([(ids[0], ids[1])])[0]
    assert torch.equal(on_subset, each[0][torch.as_tensor(np.searchsorted(points.pool_rows, outputs.rows(ids[1])))])
    identity = logit_confidence(logits, labels).numpy()
    whole = logit_confidence(_on_augmented(outputs, ids, points.pool_rows, QUERY_AUGMENTATIONS["mirror_shift"], info),
                             labels).numpy()
    outputs.augmented_blocks = partial(outputs.augmented_blocks, rows_per_pass=300)
    phi = augmented_confidences(outputs, points, labels, identity, QUERY_AUGMENTATIONS["mirror_shift"], info)
    assert phi.shape == (10, 6, 90) and np.array_equal(phi[0], identity)
    np.testing.assert_allclose(phi[1:], whole[1:], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(whole[0], identity, rtol=1e-4, atol=1e-4)

    # a rerun under the same settings reuses the result; "none" is a change of settings
    assert attack(store, ["lowfpr"], settings)["computed"] == 0
    unaugmented = parse_attack_settings({"run": ["lowfpr"], "lowfpr_augmentations": "none"})
    assert attack(store, ["lowfpr"], unaugmented)["computed"] == 1
    assert "augmentations" not in store.read_attack(key, "lowfpr")
    assert "lowfpr_augmentations" not in store.read_attack(key, "lowfpr")["settings"]


def test_the_plan_counts_the_augmented_forward_passes(monkeypatch):
    from etio.pipeline import plan as planning
    from etio.pipeline.study import parse_study
    from etio.traces import resources
    from etio.traces.resources import Calibration

    def calibration(info, arch, width, *args, **kwargs):
        return Calibration(info.name, arch, width, 4, 10, step_s=0.01, eval_s_per_model_point=1e-4,
                           peak_bytes=None, device="cpu", step_s_one=0.005, eval_s_one=2e-4)

    monkeypatch.setattr(resources, "calibrate_training", calibration)
    monkeypatch.setattr(planning._AttackTimer, "attack_seconds", lambda self, shape, settings, attacks: {})
    monkeypatch.setattr(planning._AttackTimer, "lowfpr_seconds", lambda self, models, points: 1.0)
    monkeypatch.setattr(planning._AttackTimer, "query_seconds", lambda self, *args: 2e-4, raising=False)
    lowfpr = {}
    for value in ("none", "auto", "mirror_shift"):
        raw = tomllib.loads(CIFAR_STUDY)
        raw["attacks"]["lowfpr_augmentations"] = value
        plan = planning.plan_study(parse_study(raw, "x.toml"), "cpu", calibrate=True)
        [unit] = [u for u in plan.units if u.stage == "attacks"]
        lowfpr[value] = dict(unit.by_attack)["lowfpr"]
    # unaugmented: the queries of the rest of the pool (60 - 20 points) and the scoring (1 s); each
    # augmentation besides the identity queries every model on all 60 + 30 points once more
    per_point = (lowfpr["none"] - 1.0) / (60 - 20)
    assert per_point > 0
    assert lowfpr["auto"] - lowfpr["none"] == pytest.approx(90 * per_point)          # the mirror
    assert lowfpr["mirror_shift"] - lowfpr["none"] == pytest.approx(9 * 90 * per_point)


def test_query_augmentations_are_checked_at_the_edge(tmp_path, monkeypatch, capsys):
    from etio.pipeline.study import load_study
    from tests.support.cli import one_error_line, run_main

    with pytest.raises(EtioInputError) as exc:
        parse_attack_settings({"lowfpr_augmentations": "flip"}, "x.toml")
    assert str(exc.value) == 'x.toml: [attacks] lowfpr_augmentations = "flip": must be one of auto, none, mirror, ' \
                             'mirror_shift'
    # digits is not trained with augmentation: only "auto" and "none" apply
    text = (REPO / "experiments" / "smoke.toml").read_text().replace("[attacks]\n", "[attacks]\nlowfpr_augmentations "
                                                                                   "= \"mirror\"\n", 1)
    path = tmp_path / "mirror.toml"
    path.write_text(text)
    message = f'{path}: [attacks] lowfpr_augmentations = "mirror": digits is not trained with augmentation; ' \
              f'only "auto" or "none" apply to it'
    with pytest.raises(EtioInputError) as exc:
        load_study(path)
    assert str(exc.value) == message
    code, err = run_main(monkeypatch, capsys, "plan", "--config", path, "--no-calibration")
    assert code == 2 and one_error_line(err) == f"error: {message}"
    assert load_study(REPO / "experiments" / "smoke.toml").attacks.lowfpr_augmentations == "none"
    # a study with a dataset trained with augmentation: "auto" is "mirror", made only of the configurations
    # of such datasets (a digits or MNIST configuration, or one whose dataset is unknown, is queried as it is)
    assert load_study(REPO / "experiments" / "paper-tiny.toml").attacks.lowfpr_augmentations == "mirror"
    from etio.attacks.lowfpr import LowFprSettings, run_lowfpr
    from tests.support.ensembles import synthetic_config

    config = synthetic_config("ce", repeats=3, per_repeat=2)
    ids = [m for r in config.view.model_ids_by_repeat for m in r]
    plain = run_lowfpr(config.outputs(), ids, "ce", LowFprSettings(), None)
    for info in (dataset_info("digits"), dataset_info("mnist")):
        for value in ("mirror", "mirror_shift"):
            result = run_lowfpr(config.outputs(), ids, "ce", LowFprSettings(augmentations=value), info)
            assert "augmentations" not in result and result["scores"].tobytes() == plain["scores"].tobytes()
