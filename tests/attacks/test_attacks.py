"""The membership-inference attacks: signal on overfit models, chance on unseen data, the
batched attack-model trainer, tuples, determinism, and the ``etio attack`` command."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from tests.support.ensembles import make_digits_store, synthetic_config
from etio.attacks.attack_model import AttackModelSpec, StackedMLP, init_stacked_mlp, train_attack_models
from etio.attacks.mlleaks import draw_tuples, prediction_features, VARIANTS
from etio.attacks.settings import ATTACK_NAMES, AttackSettings, MemGuardTable, parse_attack_list
from etio.attacks.outputs import torch_threads
from etio.attacks.stage import attack_configuration, requirement_problems
from etio.core.errors import EtioInputError
from etio.core.schema import MLLEAK_COLUMNS, OAK17_COLUMNS, THRESHOLD_COLUMNS, MEMGUARD_ATTACK_COLUMNS
from tests.support.repo import REPO
from tests.support.stages import attack

#: Small but real: 12 tuples, 100 attack-model epochs, MemGuard on 100 members + 100 non-members.
TEST_SETTINGS = AttackSettings(mlleak_tuples=12, mlleak_epochs=100, oak17_epochs=60,
                               memguard=MemGuardTable(max_iteration=100, samples=100, weight_decays=()))
ACC_COLUMNS = {"mlleak": "MLLeakAcc", "mlleak_l": "MLLeakLAcc", "top3": "Top3MLLeakAcc",
               "top3_l": "Top3MLLeakLAcc", "oak17": "Oak17Acc", "threshold": "ThresholdAcc",
               "memguard": "MemguardAcc"}


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):   # tiny tensors: one thread is fastest, and immune to a busy machine
        yield


def _attack_all(view, outputs, settings=TEST_SETTINGS, attacks=ATTACK_NAMES) -> dict:
    results: dict = {}
    attack_configuration(view, outputs, attacks, settings, results.__setitem__)
    return results


@pytest.fixture(scope="module", params=["ce", "mse"])
def synthetic(request):
    cfg = synthetic_config(request.param)
    assert cfg.train_acc >= 0.99 and cfg.test_acc < 0.6, "the synthetic models must overfit"
    return cfg


@pytest.fixture(scope="module")
def overfit_results(synthetic):
    return _attack_all(synthetic.view, synthetic.outputs())


def test_every_attack_beats_chance_on_an_overfit_model(synthetic, overfit_results):
    scores = {a: overfit_results[a][c] for a, c in ACC_COLUMNS.items() if a != "memguard"}
    scores["top3 (MemGuard's attacker, undefended)"] = overfit_results["memguard"]["undefended"]["Acc"]
    print(f"{synthetic.view.loss}: train acc {synthetic.train_acc:.3f}, test acc {synthetic.test_acc:.3f}, "
          + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    assert all(v >= 0.6 for v in scores.values()), scores


def test_every_attack_is_at_chance_when_members_are_unseen(synthetic):
    results = _attack_all(synthetic.unseen_view(), synthetic.unseen_outputs())
    scores = {a: results[a][c] for a, c in ACC_COLUMNS.items()}
    print(f"{synthetic.view.loss} unseen: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    assert all(abs(v - 0.5) <= 0.05 for v in scores.values()), scores


def test_result_columns_are_the_trace_columns(overfit_results):
    produced = {k for r in overfit_results.values() for k in r}
    expected = set(MLLEAK_COLUMNS + OAK17_COLUMNS + THRESHOLD_COLUMNS + MEMGUARD_ATTACK_COLUMNS)
    assert expected <= produced
    # Each family's overall accuracy is the mean of its member and non-member accuracies (balanced
    # evaluation sets); the values themselves are checked against hand-built cases in test_attack_paths.py.
    for prefix, mem, non in [("MLLeak", "MemAcc", "NonmemAcc"), ("Top3MLLeakL", "MemAcc", "NonmemAcc"),
                             ("Threshold", "MemAcc", "NonMemAcc")]:
        r = next(r for r in overfit_results.values() if f"{prefix}Acc" in r)
        assert r[f"{prefix}Acc"] == pytest.approx((r[f"{prefix}{mem}"] + r[f"{prefix}{non}"]) / 2)
    mg = overfit_results["memguard"]
    assert mg["MemguardAcc"] == pytest.approx((mg["MemguardMemberAcc"] + mg["MemguardNonmemberAcc"]) / 2)


def test_mlleak_averages_every_tuple(overfit_results):
    for name in ("mlleak", "mlleak_l", "top3", "top3_l"):
        r = overfit_results[name]
        prefix = VARIANTS[name].column_prefix
        assert len(r["per_tuple"]["Acc"]) == TEST_SETTINGS.mlleak_tuples == len(r["tuples"])
        assert r[f"{prefix}Acc"] == pytest.approx(np.mean(r["per_tuple"]["Acc"]))
        assert r[f"{prefix}Acc"] == pytest.approx((r[f"{prefix}MemAcc"] + r[f"{prefix}NonmemAcc"]) / 2)


def test_oak17_member_and_nonmember_columns_are_not_swapped(overfit_results):
    # An overfit target is confidently right on every member: members are the easy side.
    r = overfit_results["oak17"]
    assert r["Oak17MemAcc"] > 0.9 and r["Oak17MemAcc"] > r["Oak17NonmemAcc"]
    assert len(r["per_class"]["Acc"]) == 10 * len(TEST_SETTINGS.oak17_seeds)


def _numpy_losses(logits: np.ndarray, labels: np.ndarray, loss: str) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
    if loss == "ce":
        return -np.log(np.take_along_axis(probs, labels[..., None], -1)[..., 0])
    return ((probs - np.eye(probs.shape[-1])[labels]) ** 2).sum(-1)


def test_threshold_uses_every_repeat_and_train_loss(synthetic, overfit_results):
    """Recomputed with numpy from the models' outputs: per model the share of its members with loss
    <= TrainLoss and of test points above it, averaged per repeat, then over the 3 repeats."""
    r = overfit_results["threshold"]
    outputs, tau = synthetic.outputs(), synthetic.view.train_loss
    mem, non = [], []
    for ids in synthetic.view.model_ids_by_repeat:
        mem.append(np.mean([(_numpy_losses(outputs.on_subset(m).numpy(), outputs.labels_of(m).numpy(),
                                           synthetic.view.loss) <= tau).mean() for m in ids]))
        non.append(np.mean([(_numpy_losses(outputs.on_test([m])[0].numpy(), outputs.test_y.numpy(),
                                           synthetic.view.loss) > tau).mean() for m in ids]))
    assert r["per_repeat"]["MemAcc"] == pytest.approx(mem, abs=1e-3)        # float32 losses near tau may flip
    assert r["per_repeat"]["NonMemAcc"] == pytest.approx(non, abs=1e-3)
    assert r["ThresholdMemAcc"] == pytest.approx(np.mean(mem), abs=1e-3)
    assert r["ThresholdNonMemAcc"] == pytest.approx(np.mean(non), abs=1e-3)
    assert r["ThresholdAcc"] == pytest.approx((np.mean(mem) + np.mean(non)) / 2, abs=1e-3)


# ---------------------------------------------------------------------------------------
# The batched attack-model trainer
# ---------------------------------------------------------------------------------------

def test_stacked_training_equals_torch_adam_on_one_model():
    """The stack's manual Adam and bmm forward reproduce nn.Sequential + torch.optim.Adam."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(250, 11, generator=g)
    y = (x[:, 0] + 0.3 * torch.randn(250, generator=g) > 0).long()
    spec = AttackModelSpec(epochs=4)
    net = torch.nn.Sequential(torch.nn.Linear(11, 64), torch.nn.Tanh(), torch.nn.Linear(64, 32), torch.nn.Tanh(),
                              torch.nn.Linear(32, 2))
    init = init_stacked_mlp([11], spec, [torch.Generator().manual_seed(7)])
    with torch.no_grad():
        for lin, w, b in zip(net[::2], init.weights, init.biases):
            lin.weight.copy_(w[0].T)
            lin.bias.copy_(b[0, 0])
    stacked = train_attack_models(x[None], y[None], spec, [7])
    # Replay the stack's own shuffles (same generator stream after initialisation) with torch's Adam.
    gen = torch.Generator().manual_seed(7)
    init_stacked_mlp([11], spec, [gen])
    opt = torch.optim.Adam(net.parameters(), lr=spec.lr)
    for _ in range(spec.epochs):
        order = torch.rand(250, generator=gen).argsort()
        for start in range(0, 250, spec.batch_size):
            i = order[start:start + spec.batch_size]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[i]), y[i]).backward()
            opt.step()
    with torch.no_grad():
        assert torch.allclose(net(x), stacked.logits(x[None])[0], atol=1e-4)


def test_stacked_adam_is_adams_arithmetic_to_the_bit():
    """Each model's parameters follow Adam's formulas, operation by operation in this order, to the last bit
    (the trained attack models' bytes depend on it); a model without a step keeps its parameters and state."""
    from etio.attacks.attack_model import _StackedAdam

    g = torch.Generator().manual_seed(11)
    shapes = [(5, 7), (7, 2), (1, 7), (1, 2)]
    params = [torch.randn(4, *shape, generator=g) for shape in shapes]
    adam = _StackedAdam(params, 0.01, 4, "cpu")
    mine = [p.clone() for p in params]
    m, v, t = [torch.zeros_like(p) for p in mine], [torch.zeros_like(p) for p in mine], torch.zeros(4)
    for step in range(6):
        grads = [torch.randn(p.shape, generator=g) * 10.0 ** (step - 3) for p in params]
        active = torch.tensor([True, step % 2 == 0, step != 1, step > 0])    # the last: none at the first step
        adam.step(grads, active)
        t += active.float()
        for i, (p, grad) in enumerate(zip(mine, grads)):
            for b in range(4):
                if not active[b]:
                    continue
                m[i][b] = m[i][b] * 0.9 + grad[b] * (1 - 0.9)
                v[i][b] = v[i][b] * 0.999 + (grad[b] * (1 - 0.999)) * grad[b]
                c1, c2 = 1 - 0.9 ** t[b], 1 - 0.999 ** t[b]
                p[b] = p[b] - ((m[i][b] / c1) * 0.01) / ((v[i][b] / c2).sqrt() + 1e-8)
        for p, want in zip(params, mine):
            assert torch.equal(p, want), step


@pytest.mark.parametrize("hidden, l2, width", [((64, 32), 0.0, 11), ((64,), 1e-6, 10), ((16,), 0.5, 4)])
def test_written_out_backward_pass_equals_autograd_to_the_bit(hidden, l2, width):
    """stacked_gradients is autograd's backward pass written out: the same gradients to the last bit, for
    padded inputs, masked (ragged) mini-batches, an inactive model and the L2 penalty."""
    from etio.attacks.attack_model import stacked_gradients

    g = torch.Generator().manual_seed(len(hidden) + int(l2 * 10))
    n_models, m = 5, 37
    spec = AttackModelSpec(hidden=hidden, l2=l2)
    model = init_stacked_mlp([width, width - 1, width, 2, width], spec,
                             [torch.Generator().manual_seed(s) for s in range(n_models)])
    x = torch.randn(n_models, m, width, generator=g)
    y = (torch.rand(n_models, m, generator=g) > 0.4).long()
    mask = torch.rand(n_models, m, generator=g) > 0.3
    mask[3] = False                                            # a model whose data ran out: no step
    count = mask.sum(dim=1)
    active = count > 0
    params = [p.clone().requires_grad_(True) for p in model.weights + model.biases]
    graph = StackedMLP(params[:len(model.weights)], params[len(model.weights):])
    ce = torch.nn.functional.cross_entropy(graph.logits(x).reshape(-1, 2), y.reshape(-1), reduction="none")
    loss = ((ce.view(n_models, -1) * mask).sum(dim=1) / count.clamp(min=1)).sum()
    if l2:
        loss = loss + l2 * sum(((w ** 2).sum(dim=(1, 2)) * active).sum() for w in graph.weights)
    expected = torch.autograd.grad(loss, params)
    written_out = stacked_gradients(model, x, y.reshape(-1), mask, count, active, l2)
    assert len(written_out) == len(expected)
    for got, want in zip(written_out, expected):
        assert got.shape == want.shape and torch.equal(got, want)
    assert not any(bool(gr.abs().sum() == 0) for gr in written_out[:1])      # the case is not degenerate


def test_a_model_does_not_depend_on_its_batch_neighbours():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 300, 11, generator=g)
    x[2, :, 4:] = 0.0
    y = (x[..., 0] > 0).long()
    valid = torch.ones(3, 300, dtype=torch.bool)
    valid[1, 180:] = False
    spec = AttackModelSpec(epochs=3)
    together = train_attack_models(x, y, spec, [1, 2, 3], [11, 11, 4], valid)
    alone_1 = train_attack_models(x[1:2, :180], y[1:2, :180], spec, [2])
    alone_2 = train_attack_models(x[2:3, :, :4], y[2:3], spec, [3], [4])
    assert torch.allclose(together.select([1]).logits(x[1:2]), alone_1.logits(x[1:2]), atol=1e-5)
    assert torch.allclose(together.select([2]).logits(x[2:3]), alone_2.logits(x[2:3, :, :4]), atol=1e-5)


def test_shuffle_keys_do_not_depend_on_how_many_epochs_are_drawn_at_once():
    """Each epoch's shuffle keys are the model's own generator's next draws, whether the epochs are drawn
    one at a time or all at once; padding samples sort last."""
    from etio.attacks.attack_model import _epoch_keys

    valid = torch.rand(3, 50, generator=torch.Generator().manual_seed(0)) < 0.6
    n_valid = valid.sum(1)

    def keys(max_floats: int) -> torch.Tensor:
        generators = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
        return torch.stack(list(_epoch_keys(generators, valid, n_valid, 7, max_floats)))

    one_at_a_time, all_at_once = keys(1), keys(10 ** 6)
    assert one_at_a_time.shape == (7, 3, 50) and torch.equal(one_at_a_time, all_at_once)
    assert (one_at_a_time[:, ~valid] == 2.0).all() and (one_at_a_time[:, valid] < 1).all()
    first = torch.Generator().manual_seed(2)
    assert torch.equal(one_at_a_time[1, 1, valid[1]], torch.rand(2, int(n_valid[1]), generator=first)[1])


def test_features_of_each_variant():
    probs = torch.softmax(torch.randn(5, 10), -1)
    labels = torch.arange(5)
    full = prediction_features(probs, labels, VARIANTS["mlleak"])
    assert torch.equal(full, probs)                              # 10 classes: the vector as it is
    top3 = prediction_features(probs, labels, VARIANTS["top3_l"])
    assert top3.shape == (5, 4) and torch.equal(top3[:, 3], labels.float())
    assert torch.all(top3[:, 0] >= top3[:, 1]) and torch.equal(top3[:, 0], probs.max(-1).values)
    many = torch.softmax(torch.randn(5, 100), -1)
    assert prediction_features(many, labels, VARIANTS["mlleak"]).shape == (5, 10)   # CIFAR100: sorted top-10


def test_tuples_are_drawn_within_repeats_with_distinct_targets():
    ids = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]]
    tuples = draw_tuples(ids, 12, seed=4)
    assert len(tuples) == 12 and tuples == draw_tuples(ids, 12, seed=4)
    for r, repeat in enumerate(ids):
        mine = [t for t in tuples if t[0] in repeat]
        assert len(mine) == 4 and len({t[0] for t in mine}) == 4
        assert all(len(set(t)) == 3 and set(t) <= set(repeat) for t in mine)
    from etio.attacks.stage import ConfigView

    view = ConfigView("cfg", ids, 10, "ce", 0.1)
    assert requirement_problems(view, ["mlleak"], AttackSettings(mlleak_tuples=15)) == []
    problems = requirement_problems(view, ["mlleak"], AttackSettings(mlleak_tuples=16))
    assert problems and "mlleak_tuples = 16" in problems[0]
    assert requirement_problems(ConfigView("cfg", [[1, 2]] * 3, 10, "ce", 0.1), ["top3"], AttackSettings(mlleak_tuples=3))
    assert requirement_problems(ConfigView("cfg", ids, 10, "ce", None), ["threshold"], AttackSettings())


def test_attack_list_parsing():
    assert parse_attack_list(None) == list(ATTACK_NAMES)
    assert parse_attack_list("threshold,mlleak") == ["mlleak", "threshold"]
    with pytest.raises(EtioInputError, match="unknown attack 'shokri'"):
        parse_attack_list("mlleak,shokri")


# ---------------------------------------------------------------------------------------
# The command over a real trace store
# ---------------------------------------------------------------------------------------

ATTACK_TOML = """
[attacks]
seed = {seed}
mlleak_tuples = {tuples}
mlleak_epochs = 20
oak17_epochs = 10
memguard_max_iteration = 20
memguard_samples = 40
"""


@pytest.fixture(scope="module")
def digits_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("attack-store") / "store"
    make_digits_store(root, widths=(8, 32), per_repeat=4, subset=60, steps=80)
    return root


def _config(tmp_path, seed=0, tuples=6):
    path = tmp_path / f"attacks-{seed}-{tuples}.toml"
    path.write_text(ATTACK_TOML.format(seed=seed, tuples=tuples))
    return path


def _copy(store, tmp_path, name):
    dest = tmp_path / name
    shutil.copytree(store, dest)
    return dest


def _settings(seed=0, tuples=6):
    from etio.attacks.settings import parse_attack_settings
    import tomllib

    return parse_attack_settings(tomllib.loads(ATTACK_TOML.format(seed=seed, tuples=tuples))["attacks"])


def _main(monkeypatch, *args) -> int:
    """``etio ARGS`` in this process; the exit code."""
    from etio.commands import app as cli

    monkeypatch.setattr("sys.argv", ["etio", *map(str, args)])
    try:
        cli.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_same_seed_gives_identical_attack_columns(digits_store, tmp_path):
    from etio.traces.store import open_store

    a, b, c = (_copy(digits_store, tmp_path, n) for n in ("a", "b", "c"))
    attack(open_store(a), ATTACK_NAMES, _settings(0))
    attack(open_store(b), ATTACK_NAMES, _settings(0))
    attack(open_store(c), ["mlleak", "threshold"], _settings(1))
    ta, tb, tc = (pd.read_csv(s / "traces.csv") for s in (a, b, c))
    columns = MLLEAK_COLUMNS + OAK17_COLUMNS + THRESHOLD_COLUMNS + MEMGUARD_ATTACK_COLUMNS
    assert len(ta) == 2 and ta[columns].notna().all().all()
    pd.testing.assert_frame_equal(ta[columns], tb[columns])          # same seed: identical columns
    assert not ta[["MLLeakAcc", "MLLeakMemAcc"]].equals(tc[["MLLeakAcc", "MLLeakMemAcc"]])   # the seed matters
    assert ta["ThresholdAcc"].equals(tc["ThresholdAcc"])              # nothing random in the threshold attack


def test_bad_input_fails_clearly_and_loses_nothing(digits_store, tmp_path, monkeypatch, capsys):
    from etio.traces.store import open_store

    store = _copy(digits_store, tmp_path, "resume")
    attack(open_store(store), ["threshold", "top3"], _settings())
    stored = sorted(store.glob("configs/*/attacks/*.json"))
    assert len(stored) == 4
    before = [p.read_text() for p in stored]
    # An unknown attack and an impossible tuple count fail before touching anything.
    assert _main(monkeypatch, "attack", "--out", store, "--attacks", "top3,shokri") == 2
    assert "unknown attack 'shokri'" in capsys.readouterr().err
    assert _main(monkeypatch, "attack", "--out", store, "--config", _config(tmp_path, tuples=13)) == 2
    assert "mlleak_tuples = 13" in capsys.readouterr().err
    assert _main(monkeypatch, "attack", "--out", tmp_path, "--attacks", "threshold") == 2
    assert "not a trace store" in capsys.readouterr().err
    assert [p.read_text() for p in stored] == before
    # Models of the second configuration disappear: every configuration is verified before any
    # attack runs, so the error (naming the file and the way to recompute it) comes first.
    second = sorted(store.glob("configs/*"))[1]
    (second / "models.pt").unlink()
    assert _main(monkeypatch, "attack", "--out", store, "--config", _config(tmp_path)) == 2
    err = capsys.readouterr().err
    assert second.name in err and "models.pt is missing" in err and "etio traces" in err
    assert err.count("\n") == 1
    assert [p.read_text() for p in stored] == before
    first_cfg = sorted(store.glob("configs/*"))[0]
    assert {p.stem for p in (first_cfg / "attacks").glob("*.json")} == {"threshold", "top3"}


def test_attack_command_end_to_end(digits_store, tmp_path, etio_cli):
    store = _copy(digits_store, tmp_path, "cli")
    done = etio_cli("attack", "--out", store, "--config", _config(tmp_path), "--attacks", "top3,threshold,memguard")
    assert done.returncode == 0, done.stderr
    assert "2 configurations: 6 attack results computed" in done.stderr
    table = pd.read_csv(store / "traces.csv")
    assert table[["Top3MLLeakAcc", "ThresholdAcc", "MemguardAcc"]].notna().all().all()
    assert table[["MLLeakAcc", "Oak17Acc"]].isna().all().all()        # not requested, not filled
    again = etio_cli("attack", "--out", store, "--config", _config(tmp_path), "--attacks", "top3,threshold")
    assert again.returncode == 0 and "0 attack results computed, 4 already stored" in again.stderr


def test_changed_attack_settings_recompute_instead_of_relabelling(digits_store, tmp_path):
    from etio.traces.store import open_store

    store_dir = _copy(digits_store, tmp_path, "resettings")
    store = open_store(store_dir)
    first = attack(store, ["threshold", "top3"], _settings(seed=0, tuples=6))
    assert first["computed"] == 4 and first["reused"] == 0
    same = attack(store, ["threshold", "top3"], _settings(seed=0, tuples=6))
    assert same["computed"] == 0 and same["reused"] == 4
    changed = _settings(seed=1, tuples=6)
    again = attack(store, ["threshold", "top3"], changed)
    assert again["computed"] == 4 and again["reused"] == 0
    key = store.keys()[0]
    assert store.read_attack(key, "top3")["settings"]["seed"] == 1
    prov = json.loads((store_dir / "provenance.json").read_text())
    assert prov["attack_stage"]["settings"]["seed"] == 1


def test_killed_attack_run_resumes_to_the_identical_table(digits_store, tmp_path, etio_cli):
    """SIGKILL once the first attack result is stored; the rerun computes only what is missing
    and writes the traces.csv of an uninterrupted run, byte for byte."""
    import signal
    import subprocess
    import sys
    import time

    reference, killed = _copy(digits_store, tmp_path, "reference"), _copy(digits_store, tmp_path, "killed")
    config = _config(tmp_path)
    done = etio_cli("attack", "--out", reference, "--config", config)
    assert done.returncode == 0, done.stderr
    proc = subprocess.Popen([sys.executable, "-m", "etio", "attack", "--out", str(killed), "--config", str(config)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(killed.glob("configs/*/attacks/*.json")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = {str(p.relative_to(killed)): p.read_bytes() for p in killed.glob("configs/*/attacks/*.json")}
    assert 1 <= len(kept) < 2 * len(ATTACK_NAMES), len(kept)       # killed midway
    again = etio_cli("attack", "--out", killed, "--config", config)
    assert again.returncode == 0, again.stderr
    assert f"{len(kept)} already stored" in again.stderr
    assert {k: (killed / k).read_bytes() for k in kept} == kept     # what was kept is reused, not recomputed
    assert (killed / "traces.csv").read_bytes() == (reference / "traces.csv").read_bytes()


def test_per_example_scores_go_to_their_file_only(mini_attacked):
    """An attack's per-example scores are stored once, in its scores file; its result file holds their
    SHA-256, not the table again (as text)."""
    from etio.traces.store import open_store

    store = open_store(mini_attacked)
    checked = 0
    for key in store.keys():
        for path in sorted((store.config_dir(key) / "attacks").glob("*.json")):
            result = json.loads(path.read_text())
            assert "scores" not in result, path
            if "scores_sha256" in result:
                assert store.read_scores(key, path.stem).shape[0] > 0
                checked += 1
    assert checked >= 6            # lowfpr, the ML-Leaks variants, Oak17 at least


def test_a_result_stored_before_its_attack_changed_meaning_is_recomputed(mini_attacked, tmp_path):
    """A stored ML-Leaks result without the key its results have held since their ROC moved to every
    scorable point (``roc_set``) is a unit to run again, though its settings are current; the other
    attacks of that configuration, and every other configuration, stay done."""
    from etio.attacks.settings import ATTACK_NAMES
    from etio.attacks.stage import attack_units
    from etio.pipeline.study import load_study
    from etio.traces.store import open_store
    from tests.support.repo import MINI

    shutil.copytree(mini_attacked, tmp_path / "store")
    store = open_store(tmp_path / "store")
    settings = load_study(MINI).attacks
    assert attack_units(store, ATTACK_NAMES, settings) == []
    key = store.keys()[1]
    old = store.read_attack(key, "top3")
    store.write_attack(key, "top3", {k: v for k, v in old.items() if k != "roc_set"})
    assert [u.keys for u in attack_units(store, ATTACK_NAMES, settings)] == [(key,)]
    from etio.attacks.stage import _todo
    import json as _json

    assert _todo(store, key, ATTACK_NAMES, _json.loads(_json.dumps(settings.to_dict()))) == ["top3"]
