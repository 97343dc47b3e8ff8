"""The learning stage: traces -> learned graphs, through the Python API, ``etio learn`` and
``Rscript r/learn_graphs.R``, on the bundled example traces whose true graph is known."""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.repo import REPO, requires_r
from tests.support.stages import learn_one
from etio.traces import example as example_traces
from etio.core.errors import EtioInputError
from etio.traces.example import EXAMPLE_TRACES_PATH, TRUE_ARCS, true_arcs_for
from etio.core.outputs import MARKER
from etio.core.schema import ATTACKS, TRACE_COLUMNS, features_for, to_r_name
from etio.core.vocabulary import PAPER_ATTACKS

PAPER = REPO / "etio" / "data" / "paper"
FAST = {"replicates": 20, "runs": 2}  # small resampling: about a second per graph; recovery holds (see example_traces.md)


# --------------------------------------------------------------------------------------
# The bundled example traces
# --------------------------------------------------------------------------------------

def test_bundled_traces_are_what_the_generator_draws():
    bundled = pd.read_csv(EXAMPLE_TRACES_PATH)
    drawn = example_traces.generate(seed=0)
    assert list(bundled.columns) == TRACE_COLUMNS == list(drawn.columns)
    numeric = drawn.select_dtypes("number").columns
    np.testing.assert_allclose(bundled[numeric].to_numpy(float), drawn[numeric].to_numpy(float), rtol=1e-7)
    for column in drawn.columns.difference(numeric):
        assert bundled[column].astype(str).tolist() == drawn[column].astype(str).tolist(), column
    assert not example_traces.generate(seed=1)[numeric].equals(drawn[numeric])


def test_bundled_traces_have_the_authors_layout():
    traces = pd.read_csv(EXAMPLE_TRACES_PATH)
    sizes = traces.groupby(["WeightDecay", "Loss"]).size()
    assert set(sizes.index) == {(0.0005, "ce"), (0.0005, "mse"), (0.005, "ce"), (0.005, "mse")}
    assert sizes.min() >= 120
    assert set(traces["TrainSize"]) == {"1k", "5k"}
    assert PAPER_ATTACKS[-1] == "MemguardAcc"
    for attack in PAPER_ATTACKS[:-1]:
        assert traces[attack].notna().all(), attack
    # The robust-model attacks are not in the authors' traces, so the bundled ones lack them.
    assert not set(ATTACKS[len(PAPER_ATTACKS):]) & set(traces.columns)
    normal = traces["WeightDecay"] == 0.0005
    assert traces.loc[~normal, "MemguardAcc"].isna().all()  # MemGuard was run at weight decay 5e-4 only
    missing = traces.loc[normal, "MemguardAcc"].isna()
    assert 0 < missing.sum() < 0.25 * normal.sum()


def test_documented_model_is_the_generating_model():
    text = (EXAMPLE_TRACES_PATH.with_suffix(".md")).read_text()
    documented = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[2][:1] in "+−":
            documented[(cells[0].strip("`"), cells[1].strip("`"))] = float(cells[2].replace("−", "-"))
    model = {(p, child): c for child, (parents, _) in example_traces.STRUCTURAL_MODEL.items() for p, c in parents}
    assert documented == model
    assert set(model) == set(TRUE_ARCS)


@requires_r
def test_true_model_respects_the_authors_constraints():
    from etio.causal import rbridge

    for attack in ATTACKS:
        features = [to_r_name(f) for f in features_for(attack)]
        constraints = rbridge.call("etio_constraints", features, to_r_name(attack))
        true = {(to_r_name(u), to_r_name(v)) for u, v in true_arcs_for(attack)}
        blacklist = set(zip(constraints["blacklist"]["from"], constraints["blacklist"]["to"]))
        whitelist = set(zip(constraints["whitelist"]["from"], constraints["whitelist"]["to"]))
        assert not true & blacklist, (attack, true & blacklist)
        assert whitelist <= true, (attack, whitelist - true)
    assert all(u != v for u, v in TRUE_ARCS)


# --------------------------------------------------------------------------------------
# Learning through the Python API
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def traces():
    from etio.core.schema import read_traces

    return read_traces(EXAMPLE_TRACES_PATH)


def _blacklist(attack: str) -> set[tuple[str, str]]:
    from etio.causal import rbridge
    from etio.core.schema import from_r_name

    features = [to_r_name(f) for f in features_for(attack)]
    bl = rbridge.call("etio_constraints", features, to_r_name(attack))["blacklist"]
    return {(from_r_name(u), from_r_name(v)) for u, v in zip(bl["from"], bl["to"])}


def assert_recovers_true_graph(graph) -> None:
    learned = {(u, v) for u, v, d in graph.graph.edges(data=True) if not d["undirected"]}
    true = set(true_arcs_for(graph.attack))
    into_attack = {arc for arc in true if arc[1] == graph.attack}
    assert len(into_attack & learned) / len(into_attack) >= 0.8, sorted(into_attack - learned)
    assert len(true & learned) / len(true) >= 0.7, sorted(true - learned)
    assert not set(graph.graph.edges) & _blacklist(graph.attack)


@requires_r
@pytest.mark.parametrize("loss, weight_decay, attack, method", [
    ("ce", 0.0005, "Oak17Acc", "boot"),
    ("mse", 0.0005, "Top3MLLeakLAcc", "boot"),
    ("ce", 0.005, "ThresholdAcc", "boot"),
    ("mse", 0.005, "MLLeakAcc", "cv"),
])
def test_learning_recovers_the_true_arcs(traces, tmp_path, loss, weight_decay, attack, method):
    from etio.causal.learning import STRENGTH_SCHEMA

    graph = learn_one(traces, tmp_path / "graphs", loss, weight_decay, attack, method=method, seed=1, **FAST)
    assert_recovers_true_graph(graph)
    assert set(graph.graph.nodes) == set(features_for(attack)) | {attack}  # Python names
    assert graph.backend.startswith("bnlearn") and graph.method == method and graph.seed == 1
    assert list(graph.strengths.columns) == STRENGTH_SCHEMA.columns
    assert 0 < graph.threshold < 1
    # Every arc of the averaged network is above the threshold in strength, forward in direction.
    for u, v, d in graph.graph.edges(data=True):
        assert d["strength"] >= graph.threshold and d["direction"] >= 0.5, (u, v, d)
    # The true parents predict the attack well in the example model.
    assert graph.predcor > 0.8 and 0 < graph.mse < 0.01
    assert (graph.correlations["Attack"] == attack).all() and len(graph.correlations) >= 1


@requires_r
def test_memguard_rows_without_a_result_are_dropped_for_that_attack_only(traces, tmp_path):
    from etio.causal import rbridge

    with pytest.warns(rbridge.RWarning, match=r"MemguardAcc: dropped 40 of 280 rows"):
        memguard = learn_one(traces, tmp_path / "memguard", "ce", 0.0005, "MemguardAcc", **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no row is dropped for the other attacks
        oak = learn_one(traces, tmp_path / "oak", "ce", 0.0005, "Oak17Acc", **FAST)
    assert (memguard.rows, oak.rows) == (240, 280)
    assert_recovers_true_graph(memguard)


@requires_r
def test_learning_is_reproducible_from_the_seed(traces, tmp_path):
    first, again, other = (learn_one(traces, tmp_path / name, "mse", 0.0005, "Oak17Acc", seed=seed, replicates=10, runs=2)
                           for name, seed in (("first", 5), ("again", 5), ("other", 6)))
    pd.testing.assert_frame_equal(first.strengths, again.strengths)
    assert first.predcor == again.predcor and first.mse == again.mse
    assert not first.strengths["strength"].equals(other.strengths["strength"])


def test_unknown_names_are_rejected_before_r_starts(traces):
    from etio.causal.learning import present_pairs

    with pytest.raises(EtioInputError, match="unknown attack 'ShadowAcc'"):
        present_pairs(traces, 0.0005, attacks=["ShadowAcc"])
    with pytest.raises(EtioInputError, match="unknown loss 'hinge'"):
        present_pairs(traces, 0.0005, losses=["hinge"])
    with pytest.raises(EtioInputError, match="weight decays present: 0.0005, 0.005"):
        present_pairs(traces, 0.01)
    assert ("ce", "MemguardAcc") in present_pairs(traces, 0.0005)[0]
    assert len(present_pairs(traces, 0.005)[0]) == 12  # no MemGuard at the high weight decay


# --------------------------------------------------------------------------------------
# The two command lines
# --------------------------------------------------------------------------------------

CLI_ATTACKS = ["Oak17Acc", "MemguardAcc"]
GRAPHS = [f"{loss}-{attack}" for loss in ("ce", "mse") for attack in CLI_ATTACKS]
TABLES = ["results-w_dk-cont-wd_0.000500.csv", "results-cont-wd_0.000500.csv", "corr_results-cont-wd_0.000500.csv"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, etio_cli):
    out = tmp_path_factory.mktemp("cli") / "graphs"
    result = etio_cli("learn", EXAMPLE_TRACES_PATH, "--out", out, "--weight-decay", "0.0005",
                      "--attacks", ",".join(CLI_ATTACKS), "--replicates", FAST["replicates"], "--runs", FAST["runs"],
                      "--seed", "1")
    return out, result


@requires_r
def test_etio_learn_writes_every_expected_file(cli_run):
    out, result = cli_run
    assert result.returncode == 0, result.stderr
    expected = {f"{g}{suffix}" for g in GRAPHS for suffix in (".dot", ".svg", ".png", "-strength.csv")}
    expected |= set(TABLES) | {"provenance.json", ".etio-output.json"}   # the last: etio's marker of its outputs
    assert {p.name for p in out.iterdir()} == expected
    # One progress display (etio.core.progress) on stderr: off a terminal, lines with the last graph learned.
    progress = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("learn:")]
    # Workers finish in their own order, so the display names each graph once, in no fixed order.
    assert sorted(re.search(r"\(last: (\S+)\)", line).group(1) for line in progress) == sorted(GRAPHS)
    assert [re.match(r"learn: (\d)/4 graphs, ", line).group(1) for line in progress] == ["1", "2", "3", "4"]
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 2 and all("MemguardAcc: dropped 40" in line for line in warned)


@requires_r
def test_etio_learn_outputs_have_the_authors_format(cli_run):
    from etio.causal.graphs import format_bnlearn_dot, read_bnlearn_dot

    out, _ = cli_run
    for name in TABLES:
        paper_name = "corr_results-cont.csv" if name.startswith("corr") else name
        assert (out / name).read_text().splitlines()[0] == (PAPER / paper_name).read_text().splitlines()[0]
    predictive = pd.read_csv(out / TABLES[0], index_col=0)
    assert predictive[["Loss", "Attack"]].values.tolist() == [g.split("-") for g in GRAPHS]
    assert (predictive["Predcor"] > 0.8).all() and (predictive["MSE"] > 0).all()
    comparison = pd.read_csv(out / TABLES[1], index_col=0)
    assert comparison["Attack"].tolist() == ["Oak17Acc", "Oak17Acc", "MemguardAcc", "MemguardAcc"]
    corr = pd.read_csv(out / TABLES[2], index_col=0)
    for _, row in comparison.iterrows():
        rows = corr[(corr["Loss"] == row["Loss"]) & (corr["Attack"] == row["Attack"])]
        assert row["Max Corr"] == rows["Correlation"].max()
        assert row["Max Corr Var"] == rows.loc[rows["Correlation"].idxmax(), "Variable"]
    for graph in GRAPHS:
        text = (out / f"{graph}.dot").read_text()
        parsed = read_bnlearn_dot(out / f"{graph}.dot")
        assert format_bnlearn_dot(parsed) == text  # the etio.causal.graphs writer gives the same text
        attack = graph.split("-")[1]
        assert set(parsed.predecessors(attack)) >= {"AccDiff"}
        strength = pd.read_csv(out / f"{graph}-strength.csv")
        assert list(strength.columns) == ["from", "to", "strength", "direction"]
        kept = strength[strength.apply(lambda r: parsed.has_edge(r["from"], r["to"]), axis=1)]
        assert len(kept) == parsed.number_of_edges()
        svg = (out / f"{graph}.svg").read_text()
        assert "<svg" in svg and attack in svg


@requires_r
def test_etio_learn_records_provenance(cli_run):
    from etio.causal import rbridge

    out, _ = cli_run
    record = json.loads((out / "provenance.json").read_text())
    assert record["stage"] == "learn"
    assert record["backend"] == rbridge.backend()
    learning = record["structure_learning"]
    assert learning["backend"] == record["backend"] and learning["results_follow"] == "bnlearn 4.7"
    assert learning["bnlearn_found"] == "not installed" or learning["bnlearn_found"][0].isdigit()
    assert record["seeds"] == {"R set.seed before each graph": 1}
    config = record["config"]
    assert (config["weight_decay"], config["method"], config["replicates"], config["runs"]) == (0.0005, "boot", FAST["replicates"], FAST["runs"])
    assert record["input"]["sha256"] == hashlib.sha256(EXAMPLE_TRACES_PATH.read_bytes()).hexdigest()
    assert [g["rows"] for g in record["graphs"]] == [280, 240, 160, 120]
    assert record["versions"]["rpy2"].startswith("3.5")


@pytest.fixture(scope="module")
def rscript_run(tmp_path_factory, rscript):
    out = tmp_path_factory.mktemp("rscript") / "graphs"
    result = rscript(REPO / "r" / "learn_graphs.R", EXAMPLE_TRACES_PATH, "--out", out, "--weight-decay", "0.0005",
                     "--method", "boot", "--replicates", FAST["replicates"], "--runs", FAST["runs"], "--seed", "1")
    return out, result


@requires_r
def test_rscript_learns_every_attack_of_the_bundled_traces(rscript_run):
    out, result = rscript_run
    assert result.returncode == 0, result.stderr
    # Only the attacks the traces have are learned: the paper's seven, none of the robust ones.
    robust = set(ATTACKS) - set(PAPER_ATTACKS)
    assert robust and not {p.name for p in out.glob("*.dot") if p.stem.split("-", 1)[1] in robust}
    for loss in ("ce", "mse"):
        for attack in PAPER_ATTACKS:
            from etio.causal.graphs import read_bnlearn_dot

            graph = read_bnlearn_dot(out / f"{loss}-{attack}.dot", python_names=True)
            true = set(true_arcs_for(attack))
            into = {arc for arc in true if arc[1] == attack}
            assert len(into & set(graph.edges)) / len(into) >= 0.8, (loss, attack)
            assert len(true & set(graph.edges)) / len(true) >= 0.7, (loss, attack)
    assert len(pd.read_csv(out / TABLES[0], index_col=0)) == 14


@requires_r
def test_python_and_r_command_lines_agree(cli_run, rscript_run):
    """The R functions of etio_learn_all behind both front ends: every file both write is the same
    bytes, and their provenance records agree on what was computed."""
    py, _ = cli_run
    r, _ = rscript_run
    figures = {".svg", ".png"}
    python_files = {p.name for p in py.iterdir() if p.suffix not in figures}
    # Both mark their output directory as etio's (etio.core.outputs), each listing what it wrote
    # as the entries of `learn`: the R run's are the Python run's without the figures (it
    # learned every attack, the Python run only some).
    python_marker, r_marker = (json.loads((d / MARKER).read_text()) for d in (py, r))
    assert set(python_marker["entries"].values()) == set(r_marker["entries"].values()) == {"learn"}
    assert sorted(r_marker["entries"]) == sorted(p.name for p in r.iterdir() if p.name != MARKER)
    assert {n for n in python_marker["entries"] if Path(n).suffix not in figures} <= set(r_marker["entries"])
    python_files.discard(MARKER)
    shared = python_files & {p.name for p in r.iterdir()}
    # The R run learned every attack, so it holds all of the Python run's files but the figures.
    assert shared == python_files
    for name in sorted(shared - {"provenance.json", *TABLES}):
        assert (py / name).read_bytes() == (r / name).read_bytes(), name
    # The tables: the R run has more graphs; the rows of the Python run's graphs are the same lines.
    for name in TABLES:
        ours = pd.read_csv(py / name, index_col=0)
        theirs = pd.read_csv(r / name, index_col=0)
        keys = ["Loss", "Attack"] + (["Variable"] if name.startswith("corr") else [])
        merged = ours.merge(theirs, on=keys, suffixes=("", "_r"))
        assert len(merged) == len(ours), name
        for column in ours.columns.difference(keys):
            assert merged[column].tolist() == merged[f"{column}_r"].tolist(), (name, column)
    ours, theirs = (json.loads((d / "provenance.json").read_text()) for d in (py, r))
    for key in ("stage", "backend", "seeds"):
        assert ours[key] == theirs[key], key
    for key in ("weight_decay", "method", "replicates", "runs", "k", "losses", "blacklist_whitelist"):
        assert ours["config"][key] == theirs["config"][key], key
    by_name = {g["name"]: g for g in theirs["graphs"]}
    for graph in ours["graphs"]:
        other = by_name[graph["name"]]
        assert (graph["rows"], graph["arcs"], graph["threshold"]) == (other["rows"], other["arcs"], other["threshold"])
        assert graph["predcor"] == pytest.approx(other["predcor"], rel=1e-12)  # jsonlite writes 15 digits
        assert graph["mse"] == pytest.approx(other["mse"], rel=1e-12)


@requires_r
def test_byte_identical_tables_for_the_same_graphs(tmp_path, rscript):
    """With the same attacks asked for, the R command line writes the Python run's tables byte for byte."""
    from etio.causal.learning import learn_all
    from etio.core.schema import read_traces

    attacks = "ThresholdAcc,Oak17Acc"
    learn_all(read_traces(EXAMPLE_TRACES_PATH), tmp_path / "py", 0.005, attacks=attacks.split(","), replicates=5, runs=2)
    result = rscript(REPO / "r" / "learn_graphs.R", EXAMPLE_TRACES_PATH, "--out", tmp_path / "r", "--weight-decay",
                     "0.005", "--attacks", attacks, "--replicates", "5", "--runs", "2")
    assert result.returncode == 0, result.stderr
    python_files = {p.name for p in (tmp_path / "py").iterdir()}
    # both hold etio's marker (etio.core.outputs) and the same files
    assert python_files == {p.name for p in (tmp_path / "r").iterdir()}
    assert MARKER in python_files
    assert (tmp_path / "py" / MARKER).read_bytes() == (tmp_path / "r" / MARKER).read_bytes()
    python_files.discard(MARKER)
    assert len(python_files) == 2 * 2 * 2 + 3 + 1
    for name in sorted(python_files - {"provenance.json"}):
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "r" / name).read_bytes(), name
    comparison = pd.read_csv(tmp_path / "r" / "results-cont-wd_0.005000.csv", index_col=0)
    # attack-major in the authors' attack order, whatever order they were asked in
    assert comparison["Attack"].tolist() == ["Oak17Acc", "Oak17Acc", "ThresholdAcc", "ThresholdAcc"]


@requires_r
def test_a_constant_attack_is_left_out_with_its_reason(traces):
    from etio.causal.learning import present_pairs

    table = traces.copy()
    at_chance = (table["Loss"] == "mse") & (table["WeightDecay"] == 0.005)
    table.loc[at_chance, "ThresholdAcc"] = 0.5          # at chance on every mse configuration
    pairs, skipped = present_pairs(table, 0.005)
    assert len(pairs) == 11 and ("mse", "ThresholdAcc") not in pairs and ("ce", "ThresholdAcc") in pairs
    assert skipped == [{"name": "mse-ThresholdAcc",
                        "reason": f"ThresholdAcc is constant (0.5) over the {int(at_chance.sum())} rows of loss mse: "
                                  "not a node of a Gaussian network"}]
    # an attack named by the caller is learned as asked (the R check then reports the constant column)
    assert present_pairs(table, 0.005, attacks=["ThresholdAcc"]) == ([("ce", "ThresholdAcc"), ("mse", "ThresholdAcc")], [])


@requires_r
def test_an_attack_without_values_is_named_among_the_skipped(traces):
    from etio.causal.learning import present_pairs

    from etio.causal.learning import empty_attack_columns

    table = traces.copy()
    table.loc[table["Loss"] == "ce", "Oak17Acc"] = np.nan       # never attacked on the ce models
    pairs, skipped = present_pairs(table, 0.0005)
    assert ("ce", "Oak17Acc") not in pairs and ("mse", "Oak17Acc") in pairs and skipped == []
    assert empty_attack_columns(table, 0.0005, pairs) == [
        {"name": "ce-Oak17Acc", "reason": "its column has no value in the ce rows at weight decay 0.0005"}]
    assert empty_attack_columns(table, 0.0005, pairs, losses=["mse"]) == []
    # MemGuard ran at weight decay 5e-4 only: at 5e-3 its column is empty for both losses
    assert [e["name"] for e in empty_attack_columns(traces, 0.005, present_pairs(traces, 0.005)[0])] == [
        "ce-MemguardAcc", "mse-MemguardAcc"]


# --------------------------------------------------------------------------------------
# Bad input: one clear line, exit status 2, nothing written
# --------------------------------------------------------------------------------------

def _corrupt(table: pd.DataFrame, case: str) -> pd.DataFrame:
    table = table.copy()
    first_ce = table.index[(table["Loss"] == "ce") & (table["WeightDecay"] == 0.0005)][0]
    if case == "missing column":
        return table.drop(columns=["TestVar"])
    if case == "NaN in a used column":
        table.loc[first_ce, "TrainVar"] = np.nan
    elif case == "constant column":
        table["TrainBias2"] = 0.25
    elif case == "non-numeric TrainSize":
        table.loc[first_ce, "TrainSize"] = "abc"
    elif case == "non-numeric value":
        table["AccDiff"] = table["AccDiff"].astype(object)
        table.loc[first_ce, "AccDiff"] = "n/a?"
    return table


@requires_r
@pytest.mark.parametrize("case, attack, message", [
    ("missing column", "Oak17Acc", "no column 'TestVar'"),
    ("NaN in a used column", "Oak17Acc", "column 'TrainVar' has 1 row(s) with a missing"),
    ("constant column", "Oak17Acc", "column 'TrainBias2' is constant"),
    ("unknown attack", "ShadowAcc", "unknown attack 'ShadowAcc'"),
    ("non-numeric TrainSize", "Oak17Acc", "'TrainSize' has a value that is not a size: 'abc'"),
    ("non-numeric value", "Oak17Acc", "column 'AccDiff' has non-numeric value 'n/a?'"),
])
def test_bad_input_fails_with_one_clear_line_and_writes_nothing(tmp_path, etio_cli, case, attack, message):
    bad = tmp_path / "traces.csv"
    _corrupt(pd.read_csv(EXAMPLE_TRACES_PATH), case).to_csv(bad, index=False)
    out = tmp_path / "graphs"
    result = etio_cli("learn", bad, "--out", out, "--attacks", attack, "--losses", "ce", "--replicates", 5,
                      "--runs", 2)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces.csv"]  # no output, no staging left


@requires_r
def test_a_failed_run_keeps_the_previous_output(tmp_path, etio_cli):
    out = tmp_path / "graphs"
    out.mkdir()
    (out / "earlier.txt").write_text("kept")
    bad = tmp_path / "traces.csv"
    _corrupt(pd.read_csv(EXAMPLE_TRACES_PATH), "constant column").to_csv(bad, index=False)
    result = etio_cli("learn", bad, "--out", out, "--attacks", "Oak17Acc", "--losses", "ce", "--replicates", 5)
    assert result.returncode == 2
    assert [p.name for p in out.iterdir()] == ["earlier.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graphs", "traces.csv"]


@requires_r
def test_figure_falls_back_to_matplotlib_without_graphviz(traces, tmp_path, monkeypatch):
    from etio.report import figures
    graph = learn_one(traces, tmp_path / "graphs", "ce", 0.005, "Oak17Acc", replicates=10, runs=2)
    monkeypatch.setattr(figures.shutil, "which", lambda name: None)
    figures.draw_learned_graph(graph, tmp_path / graph.name)
    svg = (tmp_path / f"{graph.name}.svg").read_text()
    assert "<svg" in svg and "Oak17Acc" in svg
    assert "threshold" in svg and figures.ATTACK_FILL in svg  # titled, attack node highlighted


@requires_r
def test_1k_and_5k_train_sizes_are_read_as_sizes(traces):
    """read_traces turns 1k/5k into numbers; R's etio_prepare takes them as they come."""
    from etio.causal import rbridge

    assert set(pd.read_csv(EXAMPLE_TRACES_PATH)["TrainSize"]) == {"1k", "5k"}  # the authors' spelling on disk
    assert set(traces["TrainSize"]) == {1000.0, 5000.0}                          # parsed once, at read time
    prepared = rbridge.call("etio_prepare", traces, "ce", 0.0005, "Oak17Acc")
    assert sorted(prepared["TrainSize"].unique()) == [1000.0, 5000.0]
    assert prepared["NumParams"].max() == 1.0 and prepared["NumParams"].min() > 0  # divided by the file's maximum


@requires_r
def test_learned_objects_are_bnlearns_through_rpy2(traces):
    """In the embedded R too, etio_learn_graph hands back bnlearn's objects and bnlearn's verbs apply."""
    from etio.causal import rbridge

    raw = rbridge.call_raw("etio_learn_graph", traces, "ce", 0.0005, "Oak17Acc", R=10, runs=2)
    inspect = rbridge.function("""function(g) list(
      network = class(g$network), strength = class(g$strength),
      attributes = list(nodes = attr(g$strength, "nodes"), method = attr(g$strength, "method"),
                        threshold = attr(g$strength, "threshold")),
      printed = capture.output(print(g$network)),
      strict = as.data.frame(arcs(averaged.network(g$strength, threshold = 0.8))),
      table = as.data.frame(g$strength))""")
    seen = rbridge.call(inspect, raw)
    assert seen["network"] == "bn" and seen["strength"] == ["bn.strength", "data.frame"]
    graph = rbridge.to_python(raw)
    assert seen["attributes"] == {"nodes": graph["nodes"], "method": "bootstrap", "threshold": graph["threshold"]}
    assert "  Random/Generated Bayesian network" in seen["printed"]
    table = seen["table"]
    expected = table[((table["strength"] > 0.8) | (table["strength"] == 1)) & (table["direction"] >= 0.5)]
    assert set(zip(seen["strict"]["from"], seen["strict"]["to"])) == set(zip(expected["from"], expected["to"]))
    assert 0 < len(expected) < len(graph["arcs"])


@requires_r
def test_learning_with_two_workers_writes_the_same_bytes(traces, tmp_path):
    from etio.causal.learning import learn_all

    attacks = ["MLLeakAcc", "Oak17Acc", "ThresholdAcc"]
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"workers-{workers}"
        graphs = learn_all(traces, out, 0.0005, attacks=attacks, replicates=FAST["replicates"], runs=FAST["runs"], seed=1,
                           workers=workers)
        runs[workers] = graphs, {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    (serial, serial_files), (parallel, parallel_files) = runs[1], runs[2]
    assert [g.name for g in parallel] == [g.name for g in serial] == [f"{loss}-{a}" for loss in ("ce", "mse")
                                                                       for a in attacks]
    assert sorted(parallel_files) == sorted(serial_files)
    assert any(name.endswith("-strength.csv") for name in serial_files)
    assert any(name.startswith("results-w_dk-cont") for name in serial_files)        # Table 2's inputs
    for name in serial_files:
        if name != "provenance.json":
            assert parallel_files[name] == serial_files[name], name
    recorded = [json.loads(files["provenance.json"]) for files in (serial_files, parallel_files)]
    assert recorded[0]["graphs"] == recorded[1]["graphs"] and recorded[0]["config"] == recorded[1]["config"]
    for a, b in zip(serial, parallel):
        pd.testing.assert_frame_equal(a.strengths, b.strengths, check_exact=True)
        assert sorted(a.graph.edges(data=True)) == sorted(b.graph.edges(data=True))


@requires_r
def test_etio_learn_with_cross_validation_from_the_command_line(tmp_path, etio_cli):
    """--method cv (the authors' hold-out cross-validation) through the CLI: the graph, its
    strengths and the provenance say cv, and the true arcs of the example model are found."""
    from etio.causal.graphs import read_bnlearn_dot

    out = tmp_path / "graphs"
    result = etio_cli("learn", EXAMPLE_TRACES_PATH, "--out", out, "--method", "cv", "--attacks", "Oak17Acc",
                      "--losses", "ce", "--runs", 3, "--seed", 2)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith(f"1 graphs written to {out} (backend bnlearn")
    record = json.loads((out / "provenance.json").read_text())
    assert (record["config"]["method"], record["config"]["runs"]) == ("cv", 3)
    graph = read_bnlearn_dot(out / "ce-Oak17Acc.dot", python_names=True)
    true = set(true_arcs_for("Oak17Acc"))
    into = {arc for arc in true if arc[1] == "Oak17Acc"}
    assert len(into & set(graph.edges)) / len(into) >= 0.8
    assert len(true & set(graph.edges)) / len(true) >= 0.7
    strength = pd.read_csv(out / "ce-Oak17Acc-strength.csv")
    kept = strength[(strength["strength"] > 0)]
    assert {(u, v) for u, v in graph.edges} <= set(zip(kept["from"].map(_from_r), kept["to"].map(_from_r)))
    # Boot and cv resample differently: the strengths are not the bootstrap's.
    boot = tmp_path / "boot"
    assert etio_cli("learn", EXAMPLE_TRACES_PATH, "--out", boot, "--attacks", "Oak17Acc", "--losses", "ce",
                    "--replicates", 3, "--seed", 2).returncode == 0
    assert (boot / "ce-Oak17Acc-strength.csv").read_bytes() != (out / "ce-Oak17Acc-strength.csv").read_bytes()


def _from_r(name: str) -> str:
    from etio.core.schema import from_r_name

    return from_r_name(name)


def _same_graph(ours, read) -> None:
    assert list(ours.nodes) == list(read.nodes)
    assert list(ours.edges(data=True)) == list(read.edges(data=True))
    assert ours.graph == read.graph


@requires_r
def test_learned_graphs_in_memory_are_the_graphs_read_back(traces, tmp_path):
    """reproduce hands the learned graphs to the query stage and the figures in memory: they are what
    reading the files back gives, node, arc and attribute order included."""
    from etio.causal.graphs import read_bnlearn_dot, read_graphs
    from etio.causal.learning import as_read, learn_units, run_learn_unit, finish_learning, LearningPool
    from etio.core import layout

    attacks = ["Oak17Acc", "MLLeakAcc", "ThresholdAcc"]
    plan = learn_units(traces, 0.005, attacks=attacks, **FAST)
    assert [(u.loss, u.attacks) for u in plan.units] == [("ce", tuple(attacks)), ("mse", tuple(attacks))]
    out = tmp_path / "graphs"
    out.mkdir()
    with LearningPool(traces, 1) as pool:
        graphs = [g for unit in plan.units for g in run_learn_unit(unit, pool, out)]
        finish_learning(plan, graphs, out)
    assert [g.name for g in graphs] == [f"{loss}-{a}" for loss in ("ce", "mse") for a in attacks]
    assert any(g.arcs for g in graphs)
    read = read_graphs(out)
    ours = as_read(graphs, out)
    assert list(ours) == list(read) and len(ours) == 6
    for key in read:
        _same_graph(ours[key], read[key])
    for g in graphs:
        _same_graph(g.written(), read_bnlearn_dot(layout.path("graph", out, loss=g.loss, attack=g.attack)))
        pd.testing.assert_frame_equal(g.written_strengths(),
                                      pd.read_csv(layout.path("strength", out, loss=g.loss, attack=g.attack)))
    # the check can fail: another graph's arcs are not this one's
    assert list(graphs[0].written().edges) != list(graphs[1].written().edges)
