"""Robust models (Song et al.): PGD training, the five inference strategies, ε as a cause."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from tests.support.ensembles import synthetic_config
from tests.support.repo import REPO


def _digits_job(variants, ids=(1, 2), s=60, epochs=2, steps=3):
    from etio.traces.config import Training
    from etio.traces.datasets import disjoint_split, load
    from etio.traces.training import TrainJob

    data = load("digits")
    subsets = torch.as_tensor(disjoint_split(data.info.pool_size, s, 1, 0))[:len(ids)]
    training = Training(batch_size=20, lr_step_size=20, pgd_steps=steps, pgd_step_size=0.5, pgd_eval_steps=steps)
    job = TrainJob(data.info, "mlp_1hidden", [(16, v) for v in variants], subsets, list(ids), [epochs], training, 0)
    return data, job


def _final(job, data):
    from etio.traces.training import train_job

    return list(train_job(job, data.pool_x, data.pool_y))[-1]


def test_pgd_stays_in_the_ball_and_the_pixel_range():
    from etio.traces.robust import pgd, pixel_box, uniform_start
    from etio.traces.training import Variant

    data, job = _digits_job([Variant("ce", 5e-4, False, 0.1)])
    snap = _final(job, data)
    box = pixel_box(data.info)
    x = data.test_x[:200].unsqueeze(0).expand(2, -1, -1)
    y = data.test_y[:200].unsqueeze(0).expand(2, -1)
    eps = torch.tensor([0.1, 0.25])
    start = uniform_start(torch.Generator().manual_seed(0), x.shape)
    adv = pgd(lambda xe: snap.forward(snap.params, snap.buffers, xe, train=False, each=True), x, y, eps, 0.5, 5,
              box, start)
    pixels = lambda t: t * data.info.std[0] + data.info.mean[0]  # noqa: E731  back to [0, 1] pixels
    dist = (pixels(adv) - pixels(x)).abs().amax(dim=(1, 2))
    assert (dist <= eps + 1e-5).all() and (dist > 0.5 * eps).all()
    assert pixels(adv).min() >= -1e-5 and pixels(adv).max() <= 1 + 1e-5
    # ε = 0 returns the input bit for bit
    same = pgd(lambda xe: snap.forward(snap.params, snap.buffers, xe, train=False, each=True), x, y,
               torch.zeros(2), 0.5, 3, box, start)
    assert torch.equal(same, x)


def test_pgd_accuracy_is_at_most_the_clean_accuracy():
    from etio.traces.robust import robust_accuracies
    from etio.traces.training import Variant

    data, job = _digits_job([Variant("ce", 5e-4, False, 0.1, 0.0), Variant("mse", 5e-4, False, 0.1, 0.15)])
    snap = _final(job, data)
    clean_train, clean_test = snap.outputs(data.pool_x, data.test_x, 500)
    adv_train, adv_test = robust_accuracies(snap, data.pool_x, data.pool_y, data.test_x, data.test_y, 500)
    subsets = job.subsets
    train_acc = (clean_train.argmax(-1) == data.pool_y[subsets]).float().mean(-1)
    test_acc = (clean_test.argmax(-1) == data.test_y).float().mean(-1)
    assert torch.allclose(adv_train[0], train_acc[0]) and torch.allclose(adv_test[0], test_acc[0])  # ε = 0
    assert (adv_train[1] <= train_acc[1] + 1e-6).all() and (adv_test[1] <= test_acc[1] + 1e-6).all()
    assert (adv_test[1] < test_acc[1] - 0.05).all()          # the budget matters on digits


def test_epsilon_zero_is_natural_training_and_batching_changes_nothing():
    from etio.traces.training import Variant, train_one

    natural = Variant("ce", 5e-4, False, 0.1)
    robust = Variant("ce", 5e-4, False, 0.1, 0.1)
    data, alone = _digits_job([natural])
    _, mixed = _digits_job([natural, robust])
    a, m = _final(alone, data), _final(mixed, data)
    for mi in (0,):
        for name, t in a.state(mi).items():
            assert torch.allclose(t, m.state(0)[name], atol=1e-6), name
    # the ε = 0.1 member of the batch is the model trained alone with plain torch (same seeds)
    reference = train_one("mlp_1hidden", 16, data.info, robust, mixed.subsets[1], 2, 2, mixed.training, 0,
                          data.pool_x, data.pool_y)
    batched = m.state(1)
    assert torch.allclose(batched["hidden.weight"][1], reference.hidden.weight, atol=1e-4)
    assert torch.allclose(batched["output.weight"][1], reference.output.weight, atol=1e-4)
    assert not torch.allclose(batched["hidden.weight"][1], m.state(0)["hidden.weight"][1], atol=1e-3)


def test_natural_row_of_a_robust_grid_keeps_its_key():
    from etio.traces.config import parse_config

    raw = {"dataset": "digits", "grid": {"arch": ["mlp_1hidden"], "width": [8], "train_size": [100], "loss": ["ce"],
                                         "weight_decay": [0.0005], "epochs": [5], "scheduler": [False]}}
    natural = parse_config(raw).configurations()
    robust = parse_config({**raw, "grid": {**raw["grid"], "adv_eps": [0, 0.1]}}).configurations()
    assert natural[0].key in {c.key for c in robust} and len(robust) == 2
    with pytest.raises(Exception, match=r"\[grid\] adv_eps = \[2\]: 2 is not below 1: budgets are fractions"):
        parse_config({**raw, "grid": {**raw["grid"], "adv_eps": [2]}})


STRATEGIES = ("conf_benign", "conf_untargeted", "model_benign", "model_untargeted", "model_targeted")


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_config("ce", repeats=2, per_repeat=3, subset=100, n_test=500)


def _robust_results(view, outputs):
    from etio.attacks.settings import AttackSettings, RobustSettings
    from etio.attacks.stage import attack_configuration

    settings = AttackSettings(robust=RobustSettings(epochs=60, eps=0.3, targets=2))
    results = {}
    attack_configuration(view, outputs, list(STRATEGIES), settings, results.__setitem__)
    return results


def test_every_strategy_beats_chance_on_an_overfit_model(synthetic):
    from etio.core.schema import ROBUST_STRATEGIES

    results = _robust_results(synthetic.view, synthetic.outputs())
    for name in STRATEGIES:
        prefix = ROBUST_STRATEGIES[name][0]
        r = results[name]
        assert r[f"{prefix}Acc"] == pytest.approx((r[f"{prefix}MemAcc"] + r[f"{prefix}NonmemAcc"]) / 2)
        assert r[f"{prefix}Acc"] > 0.58, (name, r[f"{prefix}Acc"])
        assert len(r["per_class_acc"]) == 10 and r["eps"] == 0.3


def test_every_strategy_is_at_chance_on_unseen_members(synthetic):
    from etio.core.schema import ROBUST_STRATEGIES

    results = _robust_results(synthetic.unseen_view(), synthetic.unseen_outputs())
    for name in STRATEGIES:
        acc = results[name][f"{ROBUST_STRATEGIES[name][0]}Acc"]
        assert abs(acc - 0.5) < 0.06, (name, acc)


def test_calibration_split_is_per_class_and_disjoint():
    from etio.attacks.robust import best_threshold, calibration_split

    y = torch.tensor([0] * 10 + [1] * 10 + [0] * 30 + [1] * 30)
    member = torch.tensor([True] * 20 + [False] * 60)
    parts = calibration_split(y, member, 2, 0.5, np.random.default_rng(0))
    for cls, cal, ev in parts:
        assert set(cal).isdisjoint(ev) and (y[cal] == cls).all() and (y[ev] == cls).all()
        assert member[cal].sum() == 5 and (~member[cal]).sum() == 5 and len(ev) == 30
    assert best_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True])) == 0.8


# --------------------------------------------------------------------------------------
# ε as a cause
# --------------------------------------------------------------------------------------

def robust_traces(n_per_eps: int = 10, seed: int = 0) -> pd.DataFrame:
    """A robust trace table where ε lowers robust accuracy and raises the attacks."""
    from etio.core.schema import ROBUST_ATTACKS

    rng = np.random.default_rng(seed)
    rows = []
    for eps in (0.0, 0.05, 0.1, 0.2):
        for i in range(n_per_eps):
            width = [16, 64, 256][i % 3]
            size = [50, 100][i % 2]
            train = 1 - 0.5 * eps + 0.01 * np.log(width) + rng.normal(0, 0.01)
            test = train - 0.2 + 0.0005 * size + rng.normal(0, 0.01)
            row = {"WeightDecay": 0.0005, "Loss": "ce", "TrainSize": size, "NumParams": width * 74.0,
                   "TrainAcc": train, "TestAcc": test, "AccDiff": train - test,
                   "TrainLoss": 1 - train + rng.normal(0, 0.01), "TestLoss": 1.5 - test + rng.normal(0, 0.01),
                   "TrainVar": rng.normal(0.1, 0.01), "TestVar": rng.normal(0.2, 0.01),
                   "CentroidDistance(origin)": rng.normal(1, 0.1), "AdvEps": eps,
                   "AdvTrainAcc": train - 2 * eps + rng.normal(0, 0.01), "AdvTestAcc": test - 2.5 * eps + rng.normal(0, 0.01)}
            row["LossDiff"] = row["TestLoss"] - row["TrainLoss"]
            row["TrainBias2"], row["TestBias2"] = row["TrainLoss"] - row["TrainVar"], row["TestLoss"] - row["TestVar"]
            row["AdvAccDiff"] = row["AdvTrainAcc"] - row["AdvTestAcc"]
            for k, attack in enumerate(ROBUST_ATTACKS):
                row[attack] = 0.5 + 0.4 * eps + 0.00002 * width * (1 + 5 * eps) + 0.01 * k + rng.normal(0, 0.005)
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    from tests.support.stages import learn_one

    traces = robust_traces()
    graphs = {("ce", a): learn_one(traces, tmp_path_factory.mktemp("graphs") / a, "ce", 0.0005, a, replicates=20, runs=3).graph
              for a in ("ConfInferBenignAcc", "ModelInferTargetedAcc", "ModelInferBenignAcc")}
    return traces, graphs


def test_adv_eps_is_a_node_and_never_gets_a_parent(learned):
    from etio.causal import rbridge

    _, graphs = learned
    for (loss, attack), graph in graphs.items():
        assert {"AdvEps", "AdvTrainAcc", "AdvTestAcc", "AdvAccDiff"} <= set(graph.nodes), attack
        assert not list(graph.predecessors("AdvEps")), (attack, list(graph.predecessors("AdvEps")))
        assert graph.has_edge("AdvEps", "AdvTrainAcc") and graph.has_edge("AdvTestAcc", "AdvAccDiff")
    features = ["TrainAcc", "TestAcc", "AccDiff", "NumParams", "TrainSize", "AdvEps", "AdvTrainAcc", "AdvTestAcc",
                "AdvAccDiff"]
    bl = rbridge.call("etio_constraints", features, "ConfInferBenignAcc")["blacklist"]
    into = set(bl[bl["to"] == "AdvEps"]["from"])
    assert into == set(features + ["ConfInferBenignAcc"]) - {"AdvEps"}


def test_a_natural_only_table_keeps_the_paper_nodes():
    from etio.causal import rbridge

    traces = robust_traces()
    natural = traces[traces["AdvEps"] == 0.0]
    data = rbridge.call("etio_prepare", pd.concat([natural, natural.assign(TrainSize=natural["TrainSize"] + 1)],
                                                  ignore_index=True),
                        "ce", 0.0005, "ConfInferBenignAcc")
    assert "AdvEps" not in list(data.columns)


def test_robust_hypotheses_have_a_verdict_under_each_estimator(learned):
    from etio.causal.estimators import ESTIMATORS, Estimator, PaperEstimator
    from etio.causal.robust_hypotheses import ROBUST_HYPOTHESES, robust_verdicts

    class Second(Estimator):          # a further estimator plugs in as one more entry
        name = "second"

        def estimate(self, question):
            return PaperEstimator().estimate(question)

    traces, graphs = learned
    assert sorted(ESTIMATORS) == ["paper", "sound"]
    table = robust_verdicts(traces, graphs, 0.0005, estimators={**ESTIMATORS, "second": Second()})
    assert [h.query for h in ROBUST_HYPOTHESES] == sorted(set(table["Query"]))
    for name in (*ESTIMATORS, "second"):
        assert set(table[f"{name} Verdict"]) <= {"✓", "×", "◦"}
        assert table[f"{name} Result"].notna().all()
    r1 = table[(table["Query"] == "R1") & (table["Attack"] == "ConfInferBenignAcc")].iloc[0]
    r3 = table[table["Query"] == "R3"].iloc[0]
    # the synthetic attacks rise with ε by construction, and the targeted column sits 0.04 above the benign one
    for name in ESTIMATORS:
        assert r1[f"{name} ATE"] > 0 and r1[f"{name} Result"] == "✓"
        assert r3[f"{name} ATE"] == pytest.approx(0.02, abs=0.01) and r3[f"{name} Result"] == "✓"
    assert table["second ATE"].equals(table["paper ATE"])


def test_robust_queries_are_the_ate_tables_queries(learned):
    """R1 is the ATE table's query of AdvEps on each attack: both estimators give the table's numbers
    (the sound one with its modifier pruning and its training-run clusters)."""
    from etio.causal.identify import identify
    from etio.causal.query import estimate_cell, query_rows
    from etio.causal.robust_hypotheses import robust_verdicts

    traces, graphs = learned
    table = robust_verdicts(traces, graphs, 0.0005)
    r1 = table[table["Query"] == "R1"].set_index("Attack")
    compared = 0
    for (loss, attack), graph in graphs.items():
        data, runs = query_rows(traces, 0.0005, loss, attack, graph.nodes)
        ident = identify(graph, "AdvEps", attack)
        if not ident.has_directed_path:
            continue
        cell = estimate_cell(data, runs, graph, ident)
        assert r1.loc[attack, "paper ATE"] == cell["ate_paper"] and r1.loc[attack, "paper p-value"] == cell["p_value_paper"]
        assert r1.loc[attack, "sound ATE"] == cell["ate"] and r1.loc[attack, "sound p-value"] == cell["p_value"]
        compared += 1
    assert compared >= 2


def test_robust_sound_estimate_prunes_a_modifier_that_fixes_the_treatment():
    """A design that ties the width to ε exactly: NumParams, dowhy's effect modifier of AdvEps, would
    fix the treatment, so the sound estimator leaves it out in the robust table as in the ATE table
    (with it, the estimate was the paper's interaction model: 0.0592 here, against 0.0574 without)."""
    import networkx as nx

    from etio.causal.identify import identify
    from etio.causal.query import estimate_cell, query_rows
    from etio.causal.robust_hypotheses import robust_verdicts
    from etio.core.schema import ROBUST_ATTACKS

    rng = np.random.default_rng(5)
    eps = np.repeat([0.0, 0.05, 0.1, 0.2], 8)
    traces = pd.DataFrame({"Loss": "ce", "WeightDecay": 0.0005, "AdvEps": eps, "NumParams": 100 + 1000 * eps,
                           **{a: 0.5 + 0.3 * eps + rng.normal(0, 0.01, len(eps)) for a in ROBUST_ATTACKS}})
    graph = nx.DiGraph([("AdvEps", "ConfInferBenignAcc"), ("NumParams", "ConfInferBenignAcc")])
    ident = identify(graph, "AdvEps", "ConfInferBenignAcc")
    assert ident.effect_modifiers == ("NumParams",)
    data, runs = query_rows(traces, 0.0005, "ce", "ConfInferBenignAcc", graph.nodes)
    cell = estimate_cell(data, runs, graph, ident)
    assert cell["effect_modifiers"] == "" and cell["modifiers_left_out"].startswith("NumParams (with it AdvEps would")
    table = robust_verdicts(traces, {("ce", "ConfInferBenignAcc"): graph}, 0.0005)
    r1 = table[(table["Query"] == "R1") & (table["Attack"] == "ConfInferBenignAcc")].iloc[0]
    assert (r1["sound ATE"], r1["sound p-value"]) == (cell["ate"], cell["p_value"])
    assert r1["sound ATE"] == pytest.approx(0.0574, abs=5e-5) and r1["paper ATE"] == pytest.approx(0.0592, abs=5e-5)


@pytest.mark.slow
def test_embedded_robust_study_end_to_end(tmp_path):
    from etio.causal.settings import Analysis
    from etio.pipeline.reproduce import reproduce
    from etio.pipeline.study import load_study

    config = REPO / "experiments" / "smoke-robust.toml"
    study = load_study(config)
    report = reproduce(study, tmp_path / "run", source=config, device="cpu", echo=lambda *_: None)
    traces = pd.read_csv(tmp_path / "run" / "traces.csv")
    assert len(traces) == 24 and sorted(traces["AdvEps"].unique()) == [0.0, 0.1, 0.2]
    assert (traces["AdvTrainAcc"] <= traces["TrainAcc"] + 1e-6).all()
    infer = [c for c in traces.columns if "Infer" in c]
    tprs = [c for c in infer if c.endswith(("TPR0.1", "TPR1"))]
    assert len(infer) == 35 and traces[[c for c in infer if c not in tprs]].notna().all().all()
    # a few hundred evaluation non-members per configuration: too few for a TPR at 1 % FPR, so every TPR is missing
    assert traces[tprs].isna().all().all()
    table = pd.read_csv(tmp_path / "run" / "tables" / "robust" / "robust.csv")
    assert set(table["Query"]) == {"R1", "R2", "R3"}
    text = report.read_text()
    assert "robust" in text and "ConfInferBenignAcc" in text
    assert "| CE | 0.0005 | 0.2 | model-infer (targeted) | 8 |" in text     # accuracy beside AUC, per budget
    from etio.causal.graphs import read_bnlearn_dot

    for dot in (tmp_path / "run" / "graphs" / "wd_0.0005").glob("*.dot"):
        graph = read_bnlearn_dot(dot, python_names=True)
        assert "AdvEps" in graph and not list(graph.predecessors("AdvEps"))
    _ = Analysis


def test_paper_scale_robust_config_is_valid():
    from etio.pipeline.study import load_study
    from etio.traces.models import count_params

    study = load_study(REPO / "experiments" / "paper-cifar10-robust.toml")
    cfg = study.experiment
    assert cfg.is_robust and cfg.adv_eps == pytest.approx([0, 2 / 255, 4 / 255, 8 / 255], abs=1e-5)
    assert set(study.attacks.run) == set(STRATEGIES)
    sizes = [count_params("wide_resnet", s, 10, (3, 32, 32)) for s in (1, 2, 4, 8)]
    assert sizes == sorted(sizes) and sizes[-1] > 40 * sizes[0]   # channels scale with s: parameters with s²
    assert len(cfg.configurations()) == 4 * 2 * 2 * 4
    digits = load_study(REPO / "experiments" / "digits-robust.toml").experiment
    assert len(digits.configurations()) == 60 and digits.adv_eps[-1] == 0.2
