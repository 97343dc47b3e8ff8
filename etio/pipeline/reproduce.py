"""One command from training to the paper's tables (paper Fig. 4, end to end).

``reproduce`` chains the stages, each of which is also a command of its own:

    traces (etio.traces.stage) -> attacks (etio.attacks) -> learn graphs (etio.causal.learning, R)
    -> ATEs (etio.causal.query, dowhy) -> Tables 2, 3, 5-8 (etio.report.tables) -> figures -> report

Trace generation and the attacks are resumable (the trace store keeps every finished
configuration); everything after them is recomputed from ``traces.csv`` on each run and written
into the run folder (layout: ``artifacts/README.md``). The graphs the learning stage writes go on to
the ATEs, the robust hypotheses, the figures and the comparisons in memory, not read back.
``reproduce_paper`` builds every table and graph figure from the authors' published artifacts,
without training.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from etio.core.errors import EtioInputError
from etio.core.outputs import claim_output_dir, output_dir
from etio.core.layout import RUN_ENTRIES, RunLayout
from etio.core.layout import path as layout_path
from etio.core.provenance import provenance, write_json
from etio.causal.settings import Analysis
from etio.pipeline.executors import ExecutorSettings
from etio.pipeline.study import Study
from etio.core.schema import WEIGHT_DECAYS, read_traces

Echo = Callable[[str], None]

#: The paper's tables, in the order the report lists them.
TABLES = ("table2", "table3", "table5", "table6", "table7", "table8")
NORMAL_WD, HIGH_WD = WEIGHT_DECAYS
@dataclass
class Timings:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str, echo: Echo) -> Iterator[None]:
        echo(f"== {name}")
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 2)
        echo(f"   {name} done in {self.seconds[name]:.1f} s")


# --------------------------------------------------------------------------------------
# Our own run
# --------------------------------------------------------------------------------------

def reproduce(study: Study, out: Path, *, source: Path, device: str | None = None,
              data_dir: Path | None = None, echo: Echo = print, executor: ExecutorSettings | None = None,
              workers: int | None = None, force: bool = False) -> Path:
    """The whole pipeline on ``study`` (parsed from the file ``source``); returns the report path.

    ``executor``: where the trace and attack units run (default: the config's ``[executor]``
    table); ``workers``: processes learning graphs at once (default: the cores available).
    ``out`` is a run folder: new, empty or one this command made (its marker says so); any
    other directory only with ``force``, and then only the run's own entries are written.
    """
    from etio.attacks.settings import ATTACK_NAMES
    from etio.core.progress import StageProgress
    from etio.core.vocabulary import LOWFPR_STAGE
    from etio.pipeline.stages import attacks_on, traces_on
    from etio.report.document import ReportTable

    config, analysis = study.experiment, study.analysis
    executor = executor or study.executor
    claim_output_dir(Path(out), "reproduce", force=force, inputs=[source], produces=RUN_ENTRIES)
    layout = RunLayout(Path(out))
    timings = Timings()

    with timings.stage("traces: training and generalization statistics", echo):
        store = traces_on(config, layout.store, executor, _device(device), data_dir=data_dir, echo=echo,
                          progress=True)
    attacks = list(study.attacks.run)
    paper_attacks = any(a in ATTACK_NAMES and a != LOWFPR_STAGE for a in attacks)
    with timings.stage(f"attacks: {', '.join(attacks)}", echo):
        with StageProgress("attacks", len(store.keys()), unit="configurations") as bar:
            attacks_on(store, attacks, study.attacks, executor, _device(device), echo=echo, cfg=config,
                       progress=lambda key: bar.advance())
        _copy(layout_path("store_traces", layout.store), layout.traces)  # the attack stage rewrote it
    traces = read_traces(layout.traces)
    weight_decays = _weight_decays(traces)
    data_record, data_notice = _data_sources(store)

    graphs, ates, low_fpr_graphs = {}, {}, None
    with timings.stage(f"learn: causal graphs ({analysis.method}), predictive power", echo):
        from etio.causal.learning import LearningPool

        with LearningPool(traces, workers) as pool:       # both weight decays share the workers
            for wd in weight_decays:
                graphs[wd] = _learn(traces, layout, wd, analysis, echo, pool)
            if LOWFPR_STAGE in attacks:
                low_fpr_graphs = _low_fpr_graphs(traces, layout, weight_decays, analysis, echo, pool)
    query_graphs = {}
    with timings.stage("query: backdoor identification and ATEs (dowhy)", echo):
        from etio.causal.learning import as_read

        for wd in weight_decays:    # the learned graphs as read_graphs gives them, in memory: the ATEs and R1-R3
            query_graphs[wd] = as_read(graphs[wd], layout.graphs(wd))
            ates[wd] = _ates(traces, query_graphs[wd], layout, wd, analysis, echo)
    low_fpr_verdicts = None
    if paper_attacks and NORMAL_WD in ates and LOWFPR_STAGE in attacks:
        with timings.stage("low-FPR hypotheses: Table 3 with TPR at 0.1 % / 1 % FPR as the attacks' outcome", echo):
            low_fpr_verdicts = _low_fpr_verdicts(traces, layout, analysis, echo, workers)
    report_tables: list[ReportTable] = []
    if paper_attacks:
        with timings.stage("tables 2, 3, 5-8", echo):
            report_tables = _tables(layout, ates, echo)
    if config.is_robust:
        with timings.stage("robust hypotheses R1-R3", echo):
            report_tables.append(_robust_table(traces, query_graphs, layout, weight_decays, echo))
    with timings.stage("figures", echo):
        learned = _learned_graphs(graphs, layout)     # drawn, then compared
        figure_paths = _figures(traces, learned, layout, echo)
        graph_comparisons = _graph_comparisons(learned, layout, echo)
        estimators = _estimator_section(ates, layout, echo, table3=paper_attacks)
        from etio.report.lowfpr import lowfpr_section
        from etio.report.robust import robust_section

        low_fpr = lowfpr_section(traces, layout.store, layout.figures,
                                 verdicts=_accuracy_and_low_fpr(ates.get(NORMAL_WD), low_fpr_verdicts),
                                 not_learned={m: v["not_learned"] for m, v in (low_fpr_verdicts or {}).items()},
                                 predictive=_low_fpr_predictive(layout, low_fpr_verdicts),
                                 outcome_graphs=low_fpr_graphs)
        robust = robust_section(traces) if config.is_robust else None
    with timings.stage("report", echo):
        run_info = provenance(
            "reproduce", config=config.to_dict(), seeds={"config": config.seed, "R": analysis.seed},
            backend=_backend(layout, weight_decays), method=analysis.method,
            analysis=asdict(analysis), device=_device(device), timings=timings.seconds,
            executor=executor.kind,
            rows_per_slice=_rows_per_slice(traces), data=data_record,
            **({"data_notice": data_notice} if data_notice else {}),
        )
        report = _report(layout.root, report_tables, run_info, analysis.method,
                         _not_compared(figure_paths, graph_comparisons),
                         facts=run_facts(traces, backend=run_info.get("backend"), method=analysis.method,
                                         dowhy=run_info.get("versions", {}).get("dowhy")),
                         graphs=graph_comparisons,
                         sections=[estimators.report_section(), *([low_fpr] if low_fpr else []),
                                   *([robust] if robust else [])])
    write_json(layout.provenance, {**run_info, "timings": timings.seconds})
    echo(f"report: {report}")
    return report


def _data_sources(store) -> tuple[dict, str | None]:
    """Where each dataset of the run came from, and a notice when any of it is generated."""
    import json

    record_path = store.root / "provenance.json"
    data = json.loads(record_path.read_text()).get("data", {}) if record_path.is_file() else {}
    synthetic = sorted(name for name, d in data.items() if d.get("synthetic"))
    if not synthetic:
        return data, None
    where = sorted({str(data[n].get("data_dir") or data[n]["source"]) for n in synthetic})
    return data, (f"{', '.join(synthetic)} in this run are generated stand-ins written by etio in each dataset's "
                  f"own file format ({', '.join(where)}), not the real datasets: the run proves the pipeline, "
                  f"its numbers say nothing about the paper's claims.")


def _device(device: str | None) -> str:
    from etio.traces.training import resolve_device

    return resolve_device(device)


def _copy(src: Path, dst: Path) -> None:
    from etio.core.provenance import atomic_write_text

    atomic_write_text(dst, Path(src).read_text())


def _weight_decays(traces: pd.DataFrame) -> list[float]:
    present = sorted(float(v) for v in traces["WeightDecay"].dropna().unique())
    if not present:
        raise EtioInputError("the trace table has no WeightDecay values")
    return present


def _rows_per_slice(traces: pd.DataFrame) -> dict[str, int]:
    counts = traces.groupby(["Loss", "WeightDecay"]).size()
    return {f"{loss} wd={wd:g}": int(n) for (loss, wd), n in counts.items()}


def _learn(traces: pd.DataFrame, layout: RunLayout, wd: float, analysis: Analysis, echo: Echo, workers=None):
    from etio.causal.learning import learn_all
    from etio.core.progress import counted
    from etio.report.figures import draw_learned_graph

    progress = counted(f"learn wd {wd:g}", unit="graphs")
    return learn_all(traces, layout.graphs(wd), wd, method=analysis.method, seed=analysis.seed,
                     replicates=analysis.replicates, runs=analysis.runs, progress=progress, input_path=layout.traces,
                     draw=draw_learned_graph, workers=workers)


def _ates(traces: pd.DataFrame, graphs: dict, layout: RunLayout, wd: float, analysis: Analysis,
          echo: Echo) -> pd.DataFrame:
    from etio.core.provenance import atomic_write_text
    from etio.causal.estimators import Status
    from etio.causal.query import estimate_ates

    # The paper estimator is dowhy's regression, which statsmodels fits with a pseudo-inverse
    # when adjustment columns are collinear (TrainBias2 + TrainVar = TrainLoss) and warns once
    # per fit. Where the treatment itself is the collinear column the cell is reported as not
    # identifiable; elsewhere the treatment's coefficient is estimable. Count, don't spam.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = estimate_ates(traces, graphs, wd, refuters=analysis.refuters)
    for w in caught:
        if "rank-deficient" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    atomic_write_text(layout.ates(wd), table.to_csv(index=False))
    estimated = int((table["status"] == Status.ESTIMATED).sum())
    unidentified = int((table["status"] == Status.NOT_IDENTIFIABLE).sum())
    echo(f"   wd {wd:g}: {len(table)} queries, {estimated} estimated, {unidentified} not identifiable "
         "(treatment fixed by its adjustment set)")
    return table


def _low_fpr_verdicts(traces: pd.DataFrame, layout: RunLayout, analysis: Analysis, echo: Echo, workers=None) -> dict:
    """Per low-FPR metric: the Table-3 verdicts under both estimators with that TPR as the attacks'
    outcome (:mod:`etio.causal.lowfpr`), and the reasons of the attacks without a graph. Graphs go to
    ``graphs/lowfpr-<metric>-wd_<wd>``, ATEs to ``ates/ates-lowfpr-<metric>-wd_<wd>.csv``. The graphs of a
    metric are learned by ``workers`` processes (the run's; the files are the same bytes whatever the number)."""
    from etio.causal.query import estimate_ates
    from etio.causal.hypotheses import ESTIMATORS, verdicts
    from etio.causal.learning import as_read, learn_all
    from etio.causal.lowfpr import LOW_FPR_METRICS, low_fpr_ates
    from etio.core.provenance import atomic_write_text
    from etio.report.figures import draw_learned_graph

    out = {}
    learned: dict[Path, list] = {}      # the graphs learned into each directory, handed to the ATEs in memory
    for metric in LOW_FPR_METRICS:
        graphs_dir = layout.lowfpr_metric_graphs(metric, NORMAL_WD)

        def learn(table, directory, attacks):
            learned[directory] = learn_all(table, directory, NORMAL_WD, method=analysis.method, attacks=attacks,
                                           seed=analysis.seed, replicates=analysis.replicates, runs=analysis.runs,
                                           input_path=layout.traces, draw=draw_learned_graph, workers=workers)
            return learned[directory]

        def estimate(table, directory):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*rank-deficient.*")
                return estimate_ates(table, as_read(learned[directory], directory), NORMAL_WD,
                                     refuters=analysis.refuters)

        table, reasons = low_fpr_ates(traces, graphs_dir, NORMAL_WD, metric, learn, estimate)
        if len(table):
            atomic_write_text(layout.lowfpr_ates(metric, NORMAL_WD),
                              table.to_csv(index=False))
        results = layout_path("comparison", graphs_dir, wd=NORMAL_WD)
        out[metric] = {"verdicts": {e: verdicts(table, estimator=e) for e in ESTIMATORS} if len(table) else None,
                       "not_learned": reasons,
                       "predictive": pd.read_csv(results) if len(table) and results.is_file() else None}
        echo(f"   {metric}: graphs for {len(set(table['attack'])) if len(table) else 0} Table-3 attacks; "
             f"{len(reasons)} without one (their TPR is missing or constant)")
    return out


def _low_fpr_graphs(traces: pd.DataFrame, layout: RunLayout, weight_decays: list[float], analysis: Analysis,
                    echo: Echo, pool) -> tuple[pd.DataFrame, dict[float, dict[str, str]]]:
    """The graphs of the low-FPR outcomes (:func:`etio.causal.lowfpr.outcome_graphs`) at each weight decay, in
    :meth:`RunLayout.low_fpr_graphs`; their summary and, per weight decay, the outcomes without a graph."""
    from etio.causal.learning import learn_all
    from etio.causal.lowfpr import outcome_graphs
    from etio.report.figures import draw_learned_graph

    def learn(table, directory, outcomes):
        return learn_all(table, directory, wd, method=analysis.method, attacks=outcomes, seed=analysis.seed,
                         replicates=analysis.replicates, runs=analysis.runs, input_path=layout.traces,
                         draw=draw_learned_graph, workers=pool)

    summaries, reasons = [], {}
    for wd in weight_decays:
        summary, reasons[wd] = outcome_graphs(traces, layout.low_fpr_graphs(wd), wd, learn)
        summaries.append(summary)
        echo(f"   low-FPR outcomes, wd {wd:g}: {len(summary)} graphs; {len(reasons[wd])} outcomes without one")
    return pd.concat(summaries, ignore_index=True), reasons


def _low_fpr_predictive(layout: RunLayout, low_fpr: dict | None) -> pd.DataFrame | None:
    """Table-2-style predictive power of the low-FPR graphs beside the accuracy graphs of the same attacks."""
    if not low_fpr:
        return None
    parts = {metric: found["predictive"] for metric, found in low_fpr.items() if found["predictive"] is not None}
    accuracy = layout.results(NORMAL_WD)
    if not parts or not accuracy.is_file():
        return None
    attacks = set().union(*(set(p["Attack"]) for p in parts.values()))
    rows = [pd.read_csv(accuracy).assign(outcome="accuracy")]
    rows += [p.assign(outcome=metric) for metric, p in parts.items()]
    table = pd.concat(rows, ignore_index=True)
    return table[table["Attack"].isin(attacks)][["outcome", "Loss", "Attack", "Max Corr Var", "Max Corr",
                                                 "PredCor-w_dk"]].reset_index(drop=True)


def _accuracy_and_low_fpr(ates: pd.DataFrame | None, low_fpr: dict | None) -> pd.DataFrame | None:
    """One row per (query, loss): the Table-3 verdict under accuracy and under each TPR, both estimators."""
    from etio.causal.hypotheses import ESTIMATORS, NOT_IDENTIFIED, verdicts

    if ates is None or low_fpr is None:
        return None
    base = verdicts(ates, estimator="paper")[["query", "loss", "claim"]]
    for estimator in ESTIMATORS:
        base[f"accuracy ({estimator})"] = verdicts(ates, estimator=estimator)["mark"].to_numpy()
    for metric, found in low_fpr.items():
        for estimator in ESTIMATORS:
            marks = found["verdicts"][estimator]["mark"].to_numpy() if found["verdicts"] else NOT_IDENTIFIED
            base[f"{metric} ({estimator})"] = marks
    return base


def _tables(layout: RunLayout, ates: dict[float, pd.DataFrame], echo: Echo):
    """Our tables beside the paper's; returns the report's table list."""
    from etio.report import paper
    from etio.report import tables

    def results(wd: float) -> pd.DataFrame | None:
        path = layout.results(wd)
        return pd.read_csv(path) if path.is_file() else None

    ours: dict[str, pd.DataFrame | None] = {}
    normal, high = results(NORMAL_WD), results(HIGH_WD)
    ours["table2"] = tables.table2(normal, high) if normal is not None and high is not None else None
    ours["table3"] = tables.table3(ates[NORMAL_WD]) if NORMAL_WD in ates else None
    for number, (loss, wd) in tables.ATE_TABLES.items():
        ours[f"table{number}"] = tables.ate_table(ates[wd], loss, wd) if wd in ates else None
    reference = {
        "table2": tables.table2(paper.results(NORMAL_WD), paper.results(HIGH_WD)),
        "table3": tables.table3(paper.ates(NORMAL_WD)),
        **{f"table{n}": tables.ate_table(paper.ates(wd), loss, wd) for n, (loss, wd) in tables.ATE_TABLES.items()},
    }
    report_tables = []
    for name in TABLES:
        title = _title(name)
        table = ours[name]
        if table is None:
            echo(f"   {name}: not computed (this run lacks the weight decay it needs); paper values only")
        else:
            tables.write_table(table, layout.table(name), name, title,
                               provenance(name, config={"source": "this run", "run": str(layout.root)}))
        report_tables.append(_report_table(name, title, table, reference[name]))
    return report_tables


def _robust_table(traces: pd.DataFrame, graphs: dict, layout: RunLayout, weight_decays: list[float], echo: Echo):
    """R1-R3 on the robust study's graphs (etio.causal.robust_hypotheses), written beside the paper's tables."""
    from etio.causal.estimators import ESTIMATORS
    from etio.causal.robust_hypotheses import robust_verdicts
    from etio.report import tables
    from etio.report.document import ReportTable

    wd = NORMAL_WD if NORMAL_WD in weight_decays else weight_decays[0]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*rank-deficient.*")
        table = tables.robust_table(robust_verdicts(traces, graphs[wd], wd))
    tables.write_table(table, layout.table("robust"), "robust", tables.ROBUST_TITLE,
                       provenance("robust", config={"source": "this run", "run": str(layout.root), "weight_decay": wd,
                                                    "estimators": list(ESTIMATORS)}))
    verdicts = ", ".join(f"{q} {v}" for q, v in table.groupby("Query", sort=True)[
        f"{next(iter(ESTIMATORS))} Verdict"].first().items())
    echo(f"   robust: {verdicts}")
    value_columns = [c for c in table.columns if c.endswith((" ATE", " p-value", " Result", " Verdict"))]
    return ReportTable(name="robust", title=tables.ROBUST_TITLE, ours=table, paper=None,
                       key_columns=["Query", "Loss", "Attack", "Treatment"], value_columns=value_columns,
                       kind="verdict",
                       note=f"{len(table)} ATE queries at weight decay {wd:g}; no paper values (the robust-models "
                            "excerpt reports correlations on CIFAR-10, see docs/robust.md).")


def _title(name: str) -> str:
    from etio.report.tables import TITLES

    return TITLES[name]


def _report_table(name: str, title: str, ours: pd.DataFrame | None, paper_table: pd.DataFrame | None):
    from etio.report.document import ReportTable

    from etio.report.tables import PAPER_ATE, PAPER_P_VALUE, SOUND_ATE, result_column

    columns = (ours if ours is not None else paper_table).columns
    # The paper recipe's numbers face the paper's (the recipe that made them); a run's sound ATE,
    # empty where no data identifies the effect, stands beside them on our side only.
    sound = [c for c in columns if c.endswith(SOUND_ATE)] if ours is not None else []
    if name == "table2":
        keys = ["Loss", "Attack"]
        values = [c for c in columns if c.endswith(("Value", "Pred.", "MSE"))]
        kind = "predictive"
    elif name == "table3":
        keys = ["Query", "Attack", "Feature"]
        table = ours if ours is not None else paper_table
        values = [c for label in ("CE", "MSE") for c in (
            f"{label} {PAPER_ATE}", *[s for s in sound if s.startswith(label + " ")], f"{label} status",
            result_column(table, label))]
        kind = "verdict"
    else:
        keys = ["Attack", "Feature"]
        values = [PAPER_ATE, *sound, PAPER_P_VALUE, "status"]
        kind = "ate"
    return ReportTable(name=name, title=title, ours=ours, paper=paper_table, key_columns=keys,
                       value_columns=values, kind=kind, ours_only=tuple(sound))


def _learned_graphs(learned: dict, layout: RunLayout) -> dict:
    """``(weight decay, loss, attack) -> (graph, arc strengths)`` of every graph this run learned (``learned``:
    weight decay -> the learning stage's graphs), as their files read back, in the order of the file names."""
    graphs = {}
    for wd, stage_graphs in learned.items():
        files = {layout_path("graph", layout.graphs(wd), loss=g.loss, attack=g.attack): g for g in stage_graphs}
        for path in sorted(files):
            g = files[path]
            graphs[wd, g.loss, g.attack] = (g.written(), g.written_strengths())
    return graphs


def _figures(traces: pd.DataFrame, learned: dict, layout: RunLayout, echo: Echo) -> list[Path]:
    from etio.report.figures import all_figures

    paths = all_figures(traces, learned, layout.figures)
    echo(f"   {len(paths)} figure files")
    return paths


def _backend(layout: RunLayout, weight_decays: list[float]) -> str | None:
    import json

    for wd in weight_decays:
        record = layout_path("learn_provenance", layout.graphs(wd))
        if record.is_file():
            record = json.loads(record.read_text())
            follows = record.get("structure_learning", {}).get("results_follow")
            return f"{record['backend']}, results as {follows}" if follows and "backend" in record else \
                record.get("backend")
    return None


def _estimator_section(ates: dict[float, pd.DataFrame], layout: RunLayout, echo: Echo, table3: bool = True):
    """Both estimators' verdicts and the ATE forest plots; the verdicts also as a CSV."""
    from etio.core.provenance import atomic_write_text
    from etio.report.estimates import estimator_section

    section = estimator_section(ates, layout.figures, table3=table3)
    if section.verdicts is not None:
        atomic_write_text(layout.verdicts, section.verdicts.to_csv(index=False))
        echo(f"   Table 3: {len(section.changes)} of {len(section.verdicts)} verdicts differ between the paper "
             "and the sound estimator")
    echo(f"   {len(section.figures)} ATE forest plot files")
    return section


def _report(root: Path, report_tables, run_info: dict, method: str, figures: list[Path], **extra) -> Path:
    from etio.report.document import default_differences_md, write_report

    md, _html = write_report(root, tables=report_tables, run_info=run_info,
                             differences_md=default_differences_md(method), figures=figures, **extra)
    return Path(md)


def _not_compared(figure_paths: list[Path], comparisons) -> list[Path]:
    """The figures the report shows on their own: a graph drawn beside the authors' graph is
    shown there only (its own drawing stays in figures/graphs)."""
    from etio.report.figures import graph_figure_stem

    drawn_beside = {graph_figure_stem(Path(), c.weight_decay, c.loss, c.attack).name for c in comparisons if c.figure}
    return [p for p in figure_paths if p.parent.name != "graphs" or p.stem not in drawn_beside]


def run_facts(traces: pd.DataFrame, backend: str | None, method: str | None, dowhy: str | None = None):
    """What the report's numbers were computed from, read off the trace table itself."""
    from etio.report.document import RunFacts

    def values(column: str) -> list:
        return sorted(traces[column].dropna().unique().tolist()) if column in traces else []

    widths = []
    if {"Arch", "Width"} <= set(traces.columns):
        for arch, rows in traces.groupby("Arch", sort=True):
            w = sorted(rows["Width"].dropna().unique())
            if w:
                widths.append(f"{arch} {w[0]:g}-{w[-1]:g} ({len(w)})")
    return RunFacts(datasets=tuple(map(str, values("Dataset"))), architectures=tuple(map(str, values("Arch"))),
                    rows_per_slice=_rows_per_slice(traces), backend=backend, method=method,
                    widths=", ".join(widths), train_sizes=", ".join(f"{v:g}" for v in values("TrainSize")),
                    estimator=f"backdoor linear regression (dowhy {dowhy or 'version not recorded'})")


def _graph_comparisons(learned: dict, layout: RunLayout, echo: Echo):
    """Each graph of this run (:func:`_learned_graphs`) against the authors' graph of the same
    (weight decay, loss, attack), drawn side by side when graphviz is installed."""
    import shutil

    from etio.causal.graphs import graph_files
    from etio.causal.graphs import read_bnlearn_dot
    from etio.core.schema import ATTACKS, LOSSES
    from etio.report import paper
    from etio.report.comparison import compare_graphs
    from etio.report.figures import draw_each, draw_graph_comparison, graph_title

    pairs = []
    for wd in dict.fromkeys(wd for wd, _, _ in learned):
        try:
            theirs = graph_files(paper.graphs_dir(wd))
        except EtioInputError:
            continue  # the paper has no graphs at this weight decay
        ours_graphs = {(loss, attack): graph for (w, loss, attack), (graph, _) in learned.items() if w == wd}
        for (loss, attack) in sorted(ours_graphs, key=lambda k: (LOSSES.index(k[0]), ATTACKS.index(k[1]))):
            if (loss, attack) in theirs:
                pairs.append((wd, loss, attack, ours_graphs[loss, attack], theirs[loss, attack]))

    def compare(pair):
        wd, loss, attack, ours, their_file = pair
        authors = read_bnlearn_dot(their_file)
        comparison = compare_graphs(ours, authors, attack, weight_decay=wd, loss=loss)
        if shutil.which("dot"):
            stem = layout_path("compare_figure", layout.figures, wd=wd, loss=loss, attack=attack)
            _svg, png = draw_graph_comparison(ours, authors, attack, stem, title=graph_title(wd, loss, attack))
            comparison = replace(comparison, figure=str(png))
        return comparison

    comparisons = draw_each(compare, pairs)
    echo(f"   {len(comparisons)} graphs compared with the authors' graphs")
    return comparisons


# --------------------------------------------------------------------------------------
# From the authors' published artifacts
# --------------------------------------------------------------------------------------

def reproduce_paper(out: Path, echo: Echo = print, force: bool = False) -> Path:
    """Every table and graph figure from the authors' published artifacts (no training)."""
    from etio.report import paper
    from etio.report import tables
    from etio.report.figures import draw_causal_graph, graph_figure_stem, graph_title
    from etio.causal.graphs import read_bnlearn_dot
    from etio.causal.graphs import graph_files

    timings = Timings()
    with output_dir(Path(out), "reproduce --paper", force=force) as staging:
        layout = RunLayout(staging)
        with timings.stage("tables from the authors' published results", echo):
            built = {
                "table2": tables.table2(paper.results(NORMAL_WD), paper.results(HIGH_WD)),
                "table3": tables.table3(paper.ates(NORMAL_WD)),
                **{f"table{n}": tables.ate_table(paper.ates(wd), loss, wd)
                   for n, (loss, wd) in tables.ATE_TABLES.items()},
            }
            record = provenance("reproduce --paper", config={"source": "authors' published artifacts",
                                                             "data": str(paper.PAPER_DIR)})
            for name in TABLES:
                tables.write_table(built[name], layout.table(name), name, _title(name), record)
                echo(f"   {name}: {len(built[name])} rows")
        figures: list[Path] = []
        with timings.stage("causal graph figures (paper Figs. 7-13)", echo):
            for wd in WEIGHT_DECAYS:
                for (loss, attack), path in sorted(graph_files(paper.graphs_dir(wd)).items()):
                    stem = graph_figure_stem(layout.figures, wd, loss, attack)
                    figures += draw_causal_graph(read_bnlearn_dot(path), attack, stem,
                                                 title=graph_title(wd, loss, attack))
            echo(f"   {len(figures)} figure files")
        with timings.stage("report", echo):
            run_info = {**record, "timings": timings.seconds}
            # Rebuilt from the published artifacts: there is no second column to compare against.
            report_tables = [
                replace(_report_table(name, _title(name), None, built[name]),
                        note=f"{len(built[name])} rows, the paper's values, rebuilt from the authors' published "
                             "artifacts (no run of ours to compare).")
                for name in TABLES]
            from etio.report.document import default_differences_md, write_report

            write_report(staging, tables=report_tables, run_info=run_info,
                         differences_md=default_differences_md("cv"), figures=figures, mode="paper")
        write_json(layout.provenance, run_info)
    echo(f"report: {RunLayout(Path(out)).report}")
    return RunLayout(Path(out)).report
