"""The robust study's inference strategies: per-example scores, their ROC metrics and the score files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from tests.support.ensembles import synthetic_config

STRATEGIES = ("conf_benign", "conf_untargeted", "model_benign", "model_untargeted", "model_targeted")


@pytest.fixture(scope="module")
def attacked():
    """The five strategies on an overfit synthetic configuration: 2 targets per repeat, 4 in all."""
    from etio.attacks.settings import AttackSettings, RobustSettings
    from etio.attacks.stage import attack_configuration

    synthetic = synthetic_config("ce", repeats=2, per_repeat=3, subset=100, n_test=500)
    settings = AttackSettings(robust=RobustSettings(epochs=60, eps=0.3, targets=2))
    results = {}
    attack_configuration(synthetic.view, synthetic.outputs(), list(STRATEGIES), settings, results.__setitem__)
    return synthetic, results


def _prefix(strategy: str) -> str:
    from etio.core.schema import ROBUST_STRATEGIES

    return ROBUST_STRATEGIES[strategy][0]


def _calls(strategy: str, score: np.ndarray) -> np.ndarray:
    # confidence-infer: member iff confidence >= the class's threshold; model-infer: iff the member logit is larger
    return score >= 0 if strategy.startswith("conf") else score > 0


def test_each_row_is_an_evaluation_point_of_an_attacked_target(attacked):
    synthetic, results = attacked
    splits = synthetic.splits
    for strategy in STRATEGIES:
        table = pd.DataFrame(results[strategy]["scores"])
        assert list(table.columns[:6]) == ["model", "test", "point", "member", "class", "score"]
        assert table["score"].dtype == np.float32 and np.isfinite(table["score"]).all()
        assert sorted(table["model"].unique()) == results[strategy]["targets"] == [1, 2, 4, 5]
        pool = table[table["test"] == 0]
        test = table[table["test"] == 1]
        assert (pool["member"] == 1).all() and (test["member"] == 0).all()
        for model, part in pool.groupby("model"):      # members come from the target's own subset
            assert set(part["point"]) <= set(splits.subsets[model - 1].tolist())
        assert (test["point"] < 500).all()
        assert (splits.pool_y.numpy()[pool["point"]] == pool["class"]).all()
        assert (splits.test_y.numpy()[test["point"]] == test["class"]).all()
        # no evaluation point appears twice for one target
        assert not table.duplicated(["model", "test", "point"]).any()


def test_stored_scores_give_the_strategies_calls_and_accuracies(attacked):
    _, results = attacked
    for strategy in STRATEGIES:
        prefix, result = _prefix(strategy), results[strategy]
        table = pd.DataFrame(result["scores"])
        table["called"] = _calls(strategy, table["score"].to_numpy())
        member = table["member"] == 1
        mem = table[member].groupby("model")["called"].mean()
        non = (~table[~member]["called"]).groupby(table["model"]).mean()
        assert mem.mean() == pytest.approx(result[f"{prefix}MemAcc"], abs=1e-12), strategy
        assert non.mean() == pytest.approx(result[f"{prefix}NonmemAcc"], abs=1e-12), strategy
        per_class = {}
        for (_, cls), part in table.groupby(["model", "class"]):
            m = part["member"] == 1
            per_class.setdefault(str(cls), []).append(0.5 * (part["called"][m].mean() + (~part["called"][~m]).mean()))
        assert {c: np.mean(v) for c, v in per_class.items()} == pytest.approx(result["per_class_acc"], abs=1e-12)
        if strategy.startswith("conf"):
            # the score is the raw confidence minus one threshold per (target, class): the class's threshold
            offset = table["confidence"].astype(float) - table["score"].astype(float)
            spread = offset.groupby([table["model"], table["class"]]).agg(lambda v: v.max() - v.min())
            assert spread.max() < 1e-6
            tau = offset.groupby([table["model"], table["class"]]).transform("median")
            clear = (table["confidence"] - tau).abs() > 1e-6       # not within the offset's float32 rounding
            assert clear.mean() > 0.5
            assert ((table["confidence"] >= tau) == table["called"])[clear].all()
            assert 0 < table["confidence"].min() and table["confidence"].max() <= 1
        else:
            assert "confidence" not in table


def test_roc_metrics_are_those_of_the_stored_scores(attacked):
    _, results = attacked
    for strategy in STRATEGIES:
        prefix, result = _prefix(strategy), results[strategy]
        table = result["scores"]
        y, s = table["member"].astype(bool), table["score"]
        roc = result["roc"]
        assert (roc["positives"], roc["negatives"]) == (int(y.sum()), int((~y).sum()))
        assert result[f"{prefix}AUC"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        # 4 targets of ~450 evaluation non-members: enough for 1 % FPR (1 000), not for 0.1 % (10 000)
        assert 1000 <= roc["negatives"] < 10000
        fpr, tpr, _ = roc_curve(y, s)
        assert result[f"{prefix}TPR1"] == pytest.approx(tpr[fpr <= 0.01].max(), abs=1e-12)
        assert result[f"{prefix}TPR0.1"] is None and "needs at least 10000" in roc["missing"]["TPR@0.1%"]
        assert result[f"{prefix}Eps"] is not None and 0 <= result[f"{prefix}Eps"] < 20
        assert roc["AUC_interval"]["targets"] == 4
        assert roc["intervals"]["AUC"][0] <= result[f"{prefix}AUC"] <= roc["intervals"]["AUC"][1]
    # an overfit model: the benign confidence separates members well
    assert results["conf_benign"]["ConfInferBenignAUC"] > 0.8


def test_strategies_on_unseen_members_have_chance_auc():
    from etio.attacks.settings import AttackSettings, RobustSettings
    from etio.attacks.stage import attack_configuration

    synthetic = synthetic_config("ce", repeats=2, per_repeat=3, subset=100, n_test=500)
    results = {}
    attack_configuration(synthetic.unseen_view(), synthetic.unseen_outputs(), ["conf_benign", "model_benign"],
                         AttackSettings(robust=RobustSettings(epochs=60, eps=0.3, targets=2)), results.__setitem__)
    for strategy in ("conf_benign", "model_benign"):
        assert abs(results[strategy][f"{_prefix(strategy)}AUC"] - 0.5) < 0.06, strategy


def test_vocabulary_names_the_roc_columns_once():
    from etio.core import vocabulary as vocab
    from etio.core.schema import ROBUST_ATTACK_COLUMNS

    assert vocab.ROBUST_ROC_COLUMNS == [f"{_prefix(s)}{m}" for s in STRATEGIES for m in ("AUC", "TPR0.1", "TPR1", "Eps")]
    assert ROBUST_ATTACK_COLUMNS[-20:] == vocab.ROBUST_ROC_COLUMNS
    assert not set(vocab.ROBUST_ROC_COLUMNS) & set(vocab.LOWFPR_COLUMNS)
    assert vocab.display("ModelInferTargetedTPR1") == "model-infer (targeted) TPR@1%"
    assert vocab.entry("ConfInferBenignTPR0.1").stage == "conf_benign"
    assert "measure,ConfInferUntargetedEps,ConfInferUntargetedEps," in vocab.r_vocabulary_text()


def test_score_files_round_trip_through_the_store(tmp_path):
    from etio.attacks.settings import parse_attack_settings
    from etio.traces.config import parse_config
    from etio.traces.store import open_store
    from tests.support.stages import attack, train

    cfg = parse_config({"dataset": "digits", "seed": 0, "repeats": 2,
                        "training": {"batch_size": 50, "pgd_steps": 2, "pgd_step_size": 0.5, "pgd_eval_steps": 2},
                        "grid": {"arch": ["mlp_1hidden"], "width": [16], "train_size": [100], "loss": ["ce"],
                                 "weight_decay": [0.0005], "epochs": [5], "scheduler": [False], "adv_eps": [0.1]}})
    store = train(cfg, tmp_path / "store")
    settings = parse_attack_settings({"robust": {"targets": 1, "epochs": 20, "pgd_steps": 2, "nonmembers": 200}})
    attack(store, ["conf_benign", "model_targeted"], settings)
    store = open_store(tmp_path / "store")
    (key,) = store.keys()
    traces = pd.read_csv(tmp_path / "store" / "traces.csv")
    for strategy in ("conf_benign", "model_targeted"):
        prefix = _prefix(strategy)
        scores = store.read_scores(key, strategy)
        result = store.read_attack(key, strategy)
        assert len(result["scores_sha256"]) == 64
        assert len(scores) == result["roc"]["positives"] + result["roc"]["negatives"]
        assert scores["model"].nunique() == 2 and set(scores["member"]) == {0, 1}
        assert traces.loc[0, f"{prefix}AUC"] == pytest.approx(roc_auc_score(scores["member"], scores["score"]),
                                                              abs=1e-12)
        # ~2 × 150 evaluation non-members: both TPRs missing, with the reason; the accuracy is there
        assert np.isnan(traces.loc[0, f"{prefix}TPR1"]) and np.isnan(traces.loc[0, f"{prefix}TPR0.1"])
        assert "needs at least 1000" in result["roc"]["missing"]["TPR@1%"]
        assert 0 <= traces.loc[0, f"{prefix}Acc"] <= 1 and np.isfinite(traces.loc[0, f"{prefix}Eps"])
    # a changed score file makes the attack count as not done
    path = store.scores_path(key, "conf_benign")
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(Exception, match="no intact per-example scores of 'conf_benign'"):
        store.read_scores(key, "conf_benign")


def test_report_section_puts_the_roc_beside_the_accuracy():
    from etio.report.robust import robust_section, summary

    nan = float("nan")
    traces = pd.DataFrame({"Loss": "ce", "WeightDecay": 0.0005, "AdvEps": [0.0, 0.0, 0.0, 0.1, 0.1, 0.1],
                           "ConfInferBenignAcc": [0.6, 0.7, 0.8, 0.5, 0.55, 0.6],
                           "ConfInferBenignAUC": [0.61, 0.71, 0.81, 0.51, 0.56, 0.61],
                           "ConfInferBenignTPR0.1": nan, "ConfInferBenignTPR1": [0.02, nan, nan, nan, nan, nan],
                           "ConfInferBenignEps": [0.1, 0.2, 0.3, 0.0, 0.0, 0.4],
                           "ModelInferBenignAcc": nan})         # a strategy that did not run: no row
    table = summary(traces)
    assert list(table["adv_eps"]) == [0.0, 0.1] and set(table["strategy"]) == {"confidence-infer (benign)"}
    first = table.iloc[0]
    assert (first["Acc_median"], first["AUC_median"], first["TPR1_median"], first["TPR1_n"]) == \
        pytest.approx((0.7, 0.71, 0.02, 1))
    assert first["TPR0.1_n"] == 0 and np.isnan(first["TPR0.1_median"])
    text = robust_section(traces).markdown
    assert "| CE | 0.0005 | 0.1 | confidence-infer (benign) | 3 | 0.5500 (3) | 0.5600 (3) | missing | missing | " \
           "0.0000 (3) |" in text
    assert robust_section(traces.drop(columns=["AdvEps"])) is None
