"""Learning stage (paper Fig. 4, "learn graph"): trace table -> one causal graph per loss x attack.

The algorithms are bnlearn's, run by ``r/etio.R`` in the embedded R session
(:mod:`etio.causal.rbridge`): the trace rows of one loss and weight decay are prepared (and checked)
by ``etio_prepare``, hill climbing with the authors' whitelist/blacklist is resampled
(bootstrap, as the paper describes, or the authors' cross-validation) into arc strengths,
and the averaged network above the L1 threshold is the graph. Its predictive power
(hold-out correlation and MSE of the attack predicted from its parents, Table 2) and the
correlation baseline come from the same R code.

Python names follow the authors' trace (``CentroidDistance(origin)``); files written for R
users (``.dot``, strength CSVs, result tables) use R's spelling (``CentroidDistance.origin.``),
as the authors' published files do.

Differences from the authors' ``infer_graph.R`` (see ``docs/differences.md``): the random
seed is set before each graph rather than once per run, so any single graph can be
reproduced on its own; the correlation table is written per weight decay instead of being
overwritten; "Max Corr" is the numerically largest correlation (the authors compared the
values as character strings).
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import networkx as nx
import pandas as pd

from etio.causal import rbridge
from etio.core import interrupts
from etio.core import layout
from etio.core.errors import EtioFileError, EtioInputError
from etio.core.outputs import check_output_dir, output_dir
from etio.core.provenance import available_cores, provenance, write_json
from etio.causal.settings import METHODS, check_method, check_r_integer  # noqa: F401 - METHODS re-exported
from etio.core.schema import (ATTACKS, LOSSES, TableSchema, check_loss, check_trace_columns,
                              features_for, from_r_name, slice_mask, to_r_name)
from etio.core.vocabulary import GRAPH_OUTCOMES, check_outcome

#: Arc strengths of one learned graph: frequency of the arc (either direction) over the
#: resampled networks, and the fraction of those in which it points from -> to.
STRENGTH_SCHEMA = TableSchema(
    name="arc strength table",
    required={"from": "str", "to": "str", "strength": "float", "direction": "float"},
)
#: Table 2's "Etio" columns, one row per loss x attack (the authors' results-w_dk-*.csv).
PREDICTIVE_SCHEMA = TableSchema(
    name="predictive power table",
    required={"DK?": "bool", "Loss": "str", "Attack": "str", "Predcor": "float", "MSE": "float"},
)
#: The correlation baseline, one row per loss x attack x hypothesis variable (corr_results-cont.csv).
CORRELATION_SCHEMA = TableSchema(
    name="correlation table",
    required={"Loss": "str", "Attack": "str", "Variable": "str", "Correlation": "float", "p-value": "float"},
)
#: Best single correlation vs Etio's prediction (the authors' results-cont-*.csv).
COMPARISON_SCHEMA = TableSchema(
    name="correlation vs prediction table",
    required={"Loss": "str", "Attack": "str", "Max Corr Var": "str", "Max Corr": "float",
              "PredCor-w_dk": "float", "MSE-w_dk": "float"},
)


@dataclass
class LearnedGraph:
    """The averaged causal graph of one attack for one loss and weight decay."""

    loss: str
    weight_decay: float
    attack: str
    method: str
    #: Nodes: the attack's features and the attack (Python names); edge attributes
    #: ``strength``, ``direction`` and ``undirected`` (an undirected arc is stored both ways).
    graph: nx.DiGraph
    strengths: pd.DataFrame  # STRENGTH_SCHEMA, Python names
    threshold: float
    backend: str
    seed: int
    predcor: float
    mse: float
    correlations: pd.DataFrame = field(default_factory=CORRELATION_SCHEMA.empty)
    rows: int = 0
    #: What the backend found and chose (``etio_backend_info()`` in ``r/backend.R``): ``backend``,
    #: ``bnlearn_found``, ``results_follow`` and ``note`` (why an installed bnlearn was not used).
    backend_info: dict = field(default_factory=dict)
    #: The averaged network as an R object (for write.dot); None once detached from R.
    network: object = field(default=None, repr=False)
    #: ``etio_learn_graph``'s whole result as an R object, or the file a worker saved it to, for the
    #: stage's tables (:func:`finish_learning`); None for a graph not learned by this stage.
    r_result: object = field(default=None, repr=False)
    #: The averaged network's arcs (Python names) in bnlearn's stored order, the order write.dot follows.
    arcs: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.loss}-{self.attack}"

    def written(self, python_names: bool = False) -> nx.DiGraph:
        """The graph as its ``.dot`` file reads back (:func:`etio.causal.graphs.read_bnlearn_dot`), without
        reading it: bnlearn's write.dot text made here (a network without arcs: no node lines), then parsed."""
        from etio.causal.graphs import format_bnlearn_dot, parse_bnlearn_dot

        text = format_bnlearn_dot(self.graph, arc_order=self.arcs) if self.arcs else "digraph {\n}\n"
        return parse_bnlearn_dot(text, source=self.name, python_names=python_names)

    def written_strengths(self) -> pd.DataFrame:
        """The arc strengths as the strength file reads back with pandas, without reading it: R's names and
        R's 15 significant digits, through CSV text made here (so a column of whole numbers reads as integers)."""
        import io

        table = self.strengths[list(STRENGTH_SCHEMA.columns)].copy()
        for column in ("from", "to"):
            table[column] = [to_r_name(v) for v in table[column]]
        return pd.read_csv(io.StringIO(table.to_csv(index=False, float_format="%.15g")))

    @property
    def directed(self) -> bool:
        return not any(d.get("undirected") for _, _, d in self.graph.edges(data=True))


# --------------------------------------------------------------------------------------
# Input: the trace table
# --------------------------------------------------------------------------------------

def _rows_of(traces: pd.DataFrame, loss: str, weight_decay: float) -> pd.Series:
    return slice_mask(traces, loss, weight_decay)


def present_pairs(traces: pd.DataFrame, weight_decay: float, losses: Sequence[str] | None = None,
                  attacks: Sequence[str] | None = None) -> tuple[list[tuple[str, str]], list[dict]]:
    """(loss, attack) pairs to learn, in the authors' order (loss-major), and the pairs left out.

    The choice is R's ``etio_pairs`` (``r/etio.R``), the one ``Rscript r/learn_graphs.R``
    makes, so both learn the same graphs and give the same reasons. Named losses/attacks are
    taken as asked (a missing one is then reported by the R check); by default every loss with
    rows at ``weight_decay`` and every attack column with a value in those rows (MemguardAcc
    exists only at weight decay 5e-4), except an attack constant over a loss's rows: it
    cannot be a node of a Gaussian network, and is returned among the skipped pairs as
    ``{"name": "<loss>-<attack>", "reason": ...}``.
    """
    attacks = list(dict.fromkeys(attacks)) if attacks else attacks     # a name given twice is learned once
    losses = list(dict.fromkeys(losses)) if losses else losses
    for attack in attacks or ():
        check_outcome(attack)
    for loss in losses or ():
        check_loss(loss)
    if not (weight_decay > 0 and math.isfinite(weight_decay)):
        raise EtioInputError(f"weight decay must be a positive number, got {weight_decay!r}")
    chosen = rbridge.call_raw("etio_pairs", traces, float(weight_decay),
                              losses=list(losses) if losses else None, attacks=list(attacks) if attacks else None)
    table = rbridge.to_python(chosen)
    skipped = rbridge.to_python(chosen.do_slot("skipped")) or []
    return list(zip(table["loss"], table["attack"])), [dict(item) for item in skipped]


def empty_attack_columns(traces: pd.DataFrame, weight_decay: float, pairs: Sequence[tuple[str, str]],
                         losses: Sequence[str] | None = None) -> list[dict]:
    """The attack columns of the table without a value in a loss's rows at ``weight_decay`` (e.g.
    MemGuard, run at 5e-4 only), which :func:`present_pairs` leaves out without a reason, as
    ``{"name": "<loss>-<attack>", "reason": ...}``."""
    out = []
    for loss in [name for name in LOSSES if losses is None or name in losses]:
        rows = traces.loc[_rows_of(traces, loss, weight_decay)]
        if rows.empty:
            continue
        for attack in [a for a in ATTACKS if a in rows.columns and (loss, a) not in pairs]:
            if rows[attack].isna().all():
                out.append({"name": f"{loss}-{attack}",
                            "reason": f"its column has no value in the {loss} rows at weight decay {weight_decay:g}"})
    return out


# --------------------------------------------------------------------------------------
# Learning
# --------------------------------------------------------------------------------------

def _check_learning_settings(method: str, replicates: int, runs: int, seed: int = 1) -> None:
    check_method(method)
    if replicates < 1 or runs < 1:
        raise EtioInputError(f"replicates and runs must be positive (got replicates={replicates}, runs={runs})")
    check_r_integer("replicates", replicates, 1)
    check_r_integer("runs", runs, 1)
    check_r_integer("seed", seed, 0)


def _learned_graph(learned: dict) -> LearnedGraph:
    """A LearnedGraph from ``etio_learn_graph``'s result (converted by :func:`rbridge.call`)."""
    strengths = STRENGTH_SCHEMA.validate(_python_names(learned["strength"], ("from", "to")))
    nodes = [from_r_name(n) for n in learned["nodes"]]
    arcs = _python_names(learned["arcs"], ("from", "to"))
    graph = _graph(nodes, arcs, strengths)
    return LearnedGraph(arcs=tuple(zip(arcs["from"], arcs["to"])),
        loss=learned["loss"], weight_decay=float(learned["weight_decay"]), attack=learned["attack"],
        method=learned["method"], graph=graph, strengths=strengths, threshold=float(learned["threshold"]),
        backend=str(learned["backend"]), seed=int(learned["seed"]), predcor=_number(learned["predcor"]),
        mse=_number(learned["mse"]), correlations=CORRELATION_SCHEMA.validate(learned["correlations"]),
        rows=int(learned["rows"]), network=learned["network"],
        backend_info={key: str(value) for key, value in learned["backend_info"].items()},
    )


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _python_names(table: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    table = table.copy()
    for column in columns:
        table[column] = [from_r_name(str(v)) for v in table[column]]
    return table


def _graph(nodes: list[str], arcs: pd.DataFrame, strengths: pd.DataFrame) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    by_arc = {(r["from"], r["to"]): (r["strength"], r["direction"]) for _, r in strengths.iterrows()}
    pairs = set(zip(arcs["from"], arcs["to"]))
    for u, v in zip(arcs["from"], arcs["to"]):
        strength, direction = by_arc.get((u, v), (float("nan"), float("nan")))
        graph.add_edge(u, v, strength=strength, direction=direction, undirected=(v, u) in pairs)
    return graph


# --------------------------------------------------------------------------------------
# The stage: its units, one unit, its finish; every graph of a trace table as one directory
# --------------------------------------------------------------------------------------

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class LearnUnit:
    """One unit of the learning stage: the graphs of one loss at one weight decay for one set of
    outcomes (the attacks of a table, or the outcomes asked for), in the order R's ``etio_pairs``
    gives them, with the settings they are learned under."""

    weight_decay: float
    loss: str
    attacks: tuple[str, ...]
    method: str = "boot"
    seed: int = 1
    replicates: int = 200
    runs: int = 20
    k: int = 3

    @property
    def unit_id(self) -> str:
        return f"{self.loss} wd={self.weight_decay:g} {'+'.join(self.attacks)}"

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(self.loss, attack) for attack in self.attacks]


@dataclass(frozen=True)
class LearningPlan:
    """The units of one weight decay of a trace table (:func:`learn_units`), and the pairs left out
    (``{"name": "<loss>-<attack>", "reason": ...}``): ``skipped`` by R's choice (recorded in
    ``provenance.json``), ``empty`` for an attack column without a value in a loss's rows."""

    weight_decay: float
    units: tuple[LearnUnit, ...]
    skipped: tuple[dict, ...] = ()
    empty: tuple[dict, ...] = ()

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [pair for unit in self.units for pair in unit.pairs]


def learn_units(traces: pd.DataFrame, weight_decay: float, method: str = "boot",
                attacks: Sequence[str] | None = None, losses: Sequence[str] | None = None, seed: int = 1,
                replicates: int = 200, runs: int = 20, k: int = 3, source: str = "trace table") -> LearningPlan:
    """The units of the learning stage at ``weight_decay``: one per loss, holding that loss's graphs
    (:func:`present_pairs`: every attack with values, or the ``attacks`` named). Settings and trace
    columns are checked here, before any graph is learned; a pair left out is warned about."""
    _check_learning_settings(method, replicates, runs, seed)
    pairs, skipped = present_pairs(traces, weight_decay, losses, attacks)
    empty = empty_attack_columns(traces, weight_decay, pairs, losses) if attacks is None else []
    for item in [*skipped, *empty]:      # a warning, not a progress line: the graph is missing from the output
        warnings.warn(f"{item['name']} skipped, its graph is not learned: {item['reason']}", stacklevel=3)
    # The graphs that will be learned (a constant attack column is skipped, not an error).
    for loss, attack in pairs:
        check_trace_columns(traces, features_for(attack) + [attack], _rows_of(traces, loss, weight_decay),
                            source=source, what=f"the {loss}-{attack} graph at weight decay {weight_decay:g}",
                            may_be_missing=[attack])
    units: list[LearnUnit] = []
    for loss, attack in pairs:          # the pairs are loss-major: a unit is a run of one loss
        if units and units[-1].loss == loss:
            units[-1] = replace(units[-1], attacks=(*units[-1].attacks, attack))
        else:
            units.append(LearnUnit(float(weight_decay), loss, (attack,), method=method, seed=int(seed), replicates=int(replicates),
                                   runs=int(runs), k=int(k)))
    return LearningPlan(float(weight_decay), tuple(units), tuple(skipped), tuple(empty))


def run_learn_unit(unit: LearnUnit, pool: "LearningPool", directory: Path,
                   draw: Callable[[LearnedGraph, Path], None] | None = None,
                   progress: Callable[[LearnedGraph], None] | None = None) -> list[LearnedGraph]:
    """Learn the unit's graphs from the pool's trace table and write each one's files into ``directory``
    (``etio_learn_graph``, then ``etio_write_graph``, then ``draw``): in this process when the pool has one
    worker, else on its workers at once. R's seed is set before each graph, so the files are the same bytes
    whichever process learns them. Returns the graphs in the unit's order; ``progress(graph)`` after each."""
    if pool.workers > 1:
        return _learn_in_workers(pool, unit, directory, draw, progress)
    traces = pool.r_traces()
    graphs = []
    for loss, attack in unit.pairs:
        graphs.append(_learn_pair(traces, unit, loss, attack, directory, draw))
        if progress is not None:
            progress(graphs[-1])
    return graphs


def finish_learning(plan: LearningPlan, graphs: Sequence[LearnedGraph], directory: Path,
                    input_path: Path | None = None) -> None:
    """Finish the stage in ``directory``: the three result tables of every graph of ``plan`` (``etio_write_tables``
    on the graphs as R returned them, in pair order), checked, and ``provenance.json``."""
    if [(g.loss, g.attack) for g in graphs] != plan.pairs:
        raise ValueError("finish_learning needs every graph of the plan, in the plan's order")
    if any(g.r_result is None for g in graphs):
        raise ValueError("a graph detached from R cannot be written into the tables")
    learned = [rbridge.call_raw("readRDS", g.r_result) if isinstance(g.r_result, str) else g.r_result for g in graphs]
    rbridge.call_raw("etio_write_tables", rbridge.call_raw("list", *learned), str(directory), float(plan.weight_decay))
    _check_tables(directory, plan.weight_decay)
    first = graphs[0]
    _say_backend_note(first.backend_info.get("note", ""))
    write_json(layout.path("learn_provenance", directory), provenance(
        "learn",
        config={"weight_decay": plan.weight_decay, "method": first.method, "replicates": plan.units[0].replicates,
                "runs": plan.units[0].runs, "k": plan.units[0].k,
                "losses": sorted({g.loss for g in graphs}, key=LOSSES.index),
                "attacks": sorted({g.attack for g in graphs}, key=GRAPH_OUTCOMES.index),
                "blacklist_whitelist": "authors' domain knowledge (r/etio.R etio_constraints)"},
        seeds={"R set.seed before each graph": plan.units[0].seed},
        backend=first.backend,
        structure_learning=first.backend_info,
        input=_input_record(input_path),
        graphs=[{"name": g.name, "rows": g.rows, "arcs": g.graph.number_of_edges(), "threshold": g.threshold,
                 "predcor": g.predcor, "mse": g.mse} for g in graphs],
        skipped=list(plan.skipped),
    ))


def learn_all(traces: pd.DataFrame, out_dir: Path, weight_decay: float, method: str = "boot",
              attacks: Sequence[str] | None = None, losses: Sequence[str] | None = None, seed: int = 1,
              replicates: int = 200, runs: int = 20, k: int = 3, progress: Progress | None = None,
              input_path: Path | None = None,
              draw: Callable[[LearnedGraph, Path], None] | None = None,
              workers: "int | LearningPool | None" = None, force: bool = False) -> list[LearnedGraph]:
    """Learn every loss x attack graph at ``weight_decay`` and write them to ``out_dir``: the stage's
    units (:func:`learn_units`), each run (:func:`run_learn_unit`), then the stage finished
    (:func:`finish_learning`). ``etio learn``, ``etio reproduce`` and the tests take this road.

    The files are those of ``etio_learn_all`` (``r/etio.R``), which ``Rscript r/learn_graphs.R``
    runs, from the same R functions in the same order, so both write the same bytes. Files (the authors'
    names and columns; ``%f`` is the weight decay as C's ``%f``): ``<loss>-<attack>.dot``
    (bnlearn write.dot), ``<loss>-<attack>-strength.csv``, ``results-w_dk-cont-wd_%f.csv``,
    ``results-cont-wd_%f.csv``, ``corr_results-cont-wd_%f.csv``; then, from here, the figures
    and ``provenance.json``. The directory appears only when everything was computed; on an
    error nothing is written. ``progress(done, total, name)`` is called after each graph. An attack whose column is constant
    over a slice (an attack at chance on every configuration, as on tiny studies) cannot be a node
    of a Gaussian network: unless attacks were named, its graph is not learned, and the reason is
    recorded in ``provenance.json`` (``skipped``) and passed to ``progress``.
    ``draw(graph, stem)``, when given, writes the graph's figures (``stem.svg``/``.png``) into the
    same staged directory; the report stage supplies it
    (:func:`etio.report.figures.draw_learned_graph`), since drawing is not this stage's business.

    ``workers`` (default: the cores available) processes learn graphs at once, each with its own
    embedded R. Every graph sets R's seed before it is learned, so the files are the same bytes
    whatever the number of workers; with one, the graphs are learned in this process. A
    :class:`LearningPool` given as ``workers`` is reused (the weight decays of one table start their
    workers once). ``out_dir`` is written under the rules of :mod:`etio.core.outputs` (``force`` writes
    beside files etio did not write; an input inside ``out_dir`` is refused).
    """
    _check_learning_settings(method, replicates, runs, seed)
    inputs = [input_path] if input_path is not None else []
    check_output_dir(Path(out_dir), "learn", force=force, inputs=inputs)   # before R starts
    plan = learn_units(traces, weight_decay, method=method, attacks=attacks, losses=losses, seed=seed, replicates=replicates,
                       runs=runs, k=k, source=str(input_path) if input_path else "trace table")
    if isinstance(workers, LearningPool):
        if workers.traces is not traces:
            raise ValueError("a LearningPool learns from the trace table it was started with")
        pool = workers
    else:
        count = available_cores() if workers is None else int(workers)
        if count < 1:
            raise EtioInputError(f"workers must be ≥ 1, got {count}")
        pool = LearningPool(traces, min(count, len(plan.pairs)))
    graphs: list[LearnedGraph] = []
    finished = 0

    def learned(graph: LearnedGraph) -> None:
        nonlocal finished
        finished += 1
        if progress is not None:
            progress(finished, len(plan.pairs), graph.name)

    try:
        with output_dir(Path(out_dir), "learn", force=force, inputs=inputs) as staging:
            with pool, interrupts.stopping(pool.kill):
                for unit in plan.units:
                    graphs += run_learn_unit(unit, pool, staging, draw=draw, progress=learned)
                finish_learning(plan, graphs, staging, input_path=input_path)
    except rbridge.RFileError as exc:     # R's message does not say where it wrote
        raise EtioFileError(f"cannot write {out_dir}: {exc}") from None
    return graphs


def as_read(graphs: Sequence[LearnedGraph], directory: Path) -> dict[tuple[str, str], nx.DiGraph]:
    """What :func:`etio.causal.graphs.read_graphs` returns for ``directory`` once :func:`learn_all` has written
    ``graphs`` there, made from the graphs in memory instead of read back: each graph as its file reads
    (:meth:`LearnedGraph.written`), checked as an attack graph, with the weight decay it was learned at and
    its source, in the order of the file names."""
    from etio.causal.graphs import attack_graph

    files = {layout.path("graph", directory, loss=g.loss, attack=g.attack): g for g in graphs}
    out = {}
    for path in sorted(files):
        g = files[path]
        out[g.loss, g.attack] = graph = attack_graph(g.written(python_names=True), g.attack, path)
        graph.graph.update(weight_decay=g.weight_decay, source=str(directory))
    return out


_SAID_NOTES: set[str] = set()


def _say_backend_note(note: str) -> None:
    """Why an installed bnlearn was not used (r/backend.R), as a warning once per process."""
    if note and note not in _SAID_NOTES:
        _SAID_NOTES.add(note)
        warnings.warn(note, BackendNote, stacklevel=3)


class BackendNote(UserWarning):
    """The structure-learning backend differs from the installed bnlearn, and why."""


class LearningPool:
    """``workers`` processes, each with its own embedded R holding ``traces``, for one or more
    :func:`learn_all` calls on that table (pass it as ``workers``); started on first use. With one
    worker, the graphs are learned in this process's R (:meth:`r_traces`).

    Spawned (a fresh interpreter per worker), so no R or torch state is inherited through fork.
    As with any spawned pool, a script that starts one needs the ``if __name__ == "__main__":`` guard.
    """

    def __init__(self, traces: pd.DataFrame, workers: int | None = None):
        self.traces = traces
        self.workers = available_cores() if workers is None else int(workers)
        self._executor = None
        self._traces_file: str | None = None
        self._scratch = None
        self._saved = 0
        self._r_traces = None
        self._depth = 0

    def r_traces(self):
        """The trace table in this process's R, normalised once (as a worker holds it)."""
        if self._r_traces is None:
            self._r_traces = rbridge.call_raw(".etio_normalise_traces", rbridge.to_r(self.traces))
        return self._r_traces

    def scratch(self) -> Path:
        """The pool's scratch folder, removed with the pool: the graphs workers save for the stage's tables,
        and the workers' temporary directory (the R of a worker stopped by Ctrl-C leaves its own there)."""
        import tempfile

        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="etio-learn-", ignore_cleanup_errors=True)
        return Path(self._scratch.name)

    def saved_path(self) -> str:
        """A new file in the pool's scratch folder, for a graph a worker saves for the stage's tables."""
        self._saved += 1
        return str(self.scratch() / f"{self._saved:04d}.rds")

    def submit(self, fn, *args):
        if self._executor is None:
            import multiprocessing
            import tempfile
            from concurrent.futures import ProcessPoolExecutor

            # The workers read the table from a file: a start-up message that small goes through
            # the pipe at once, so starting a worker never waits for the child (nor delays Ctrl-C).
            fd, self._traces_file = tempfile.mkstemp(prefix="etio-learn-traces-", suffix=".pkl")
            with os.fdopen(fd, "wb") as handle:
                self.traces.to_pickle(handle)
            self._executor = ProcessPoolExecutor(max_workers=self.workers,
                                                 mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_worker,
                                                 initargs=(self._traces_file, str(self.scratch())))
        with interrupts.held():         # a worker being started gets all of its start-up data
            return self._executor.submit(fn, *args)

    def _closed(self) -> None:
        self._executor = None
        if self._traces_file is not None:
            Path(self._traces_file).unlink(missing_ok=True)
            self._traces_file = None

    def __enter__(self) -> "LearningPool":
        self._depth += 1
        return self

    def __exit__(self, kind, value, traceback) -> bool:
        self._depth -= 1
        if self._executor is not None and kind is not None and not issubclass(kind, Exception):
            interrupts.terminate_pool(self._executor)   # Ctrl-C: the workers stop now, not after their graph
            self._closed()
        if self._depth == 0 and self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._closed()
        if self._depth == 0 and self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
        return False

    def kill(self) -> None:
        """Terminate the workers (the interrupt path calls it from its signal handler)."""
        if self._executor is not None:
            interrupts.kill_workers(self._executor)


def _learn_pair(traces, unit: LearnUnit, loss: str, attack: str, directory, draw, saved: str | None = None
                ) -> LearnedGraph:
    """One graph of ``unit`` learned in this process's R from ``traces`` (an R data.frame), its files written
    into ``directory``; ``saved``: also saved there for the stage's tables (a worker's graph)."""
    learned = rbridge.call_raw("etio_learn_graph", traces, loss, float(unit.weight_decay), attack,
                               # bnlearn calls the bootstrap replicates R (boot.strength's argument)
                               method=unit.method, R=int(unit.replicates), runs=int(unit.runs), k=int(unit.k),
                               seed=int(unit.seed))
    rbridge.call_raw("etio_write_graph", learned, str(directory))
    if saved is not None:
        rbridge.call_raw("saveRDS", learned, saved)
    graph = _learned_graph(rbridge.to_python(learned))
    if draw is not None:
        draw(graph, layout.path("graph_drawing", directory, loss=graph.loss, attack=graph.attack))
    graph.r_result = learned if saved is None else saved
    return graph


def _learn_in_workers(pool: LearningPool, unit: LearnUnit, directory, draw, progress) -> list[LearnedGraph]:
    """The unit's graphs learned by the pool's workers, returned in the unit's order."""
    from concurrent.futures import as_completed

    pairs = unit.pairs
    graphs: list[LearnedGraph | None] = [None] * len(pairs)
    caught: list[list] = [[] for _ in pairs]
    futures = {pool.submit(_learn_in_worker, unit, loss, attack, str(directory), pool.saved_path(), draw): i
               for i, (loss, attack) in enumerate(pairs)}
    try:
        for future in as_completed(futures):
            i = futures[future]
            graphs[i], caught[i] = future.result()
            if progress is not None:
                progress(graphs[i])
    except BaseException as exc:
        if isinstance(exc, Exception):      # on Ctrl-C the pool is terminated as a whole instead
            for future in futures:
                future.cancel()
        raise
    for messages in caught:             # R's warnings, in the order a serial run gives them
        for message, category in messages:
            warnings.warn(message, category, stacklevel=3)
    return graphs


_worker_traces = None


def _start_worker(traces_file: str, temporary: str) -> None:
    global _worker_traces
    os.environ["TMPDIR"] = temporary    # before R starts: its temporary directory goes with the pool's
    _worker_traces = rbridge.call_raw(".etio_normalise_traces", rbridge.to_r(pd.read_pickle(traces_file)))
    interrupts.ignore_in_worker()       # after R started (it takes SIGINT over): the parent stops us


def _learn_in_worker(unit, loss, attack, staging, saved, draw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = _learn_pair(_worker_traces, unit, loss, attack, staging, draw, saved=saved)
    graph.network = None                # an R object: it stays in this process
    return graph, [(str(w.message), w.category) for w in caught]


def _input_record(path: Path | None) -> dict | None:
    if path is None:
        return None
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return {"path": str(Path(path).resolve()), "sha256": digest}


#: The result tables ``etio_write_tables`` writes, by their key in the run layout, with their schemas.
RESULT_TABLES = {"predictive": PREDICTIVE_SCHEMA, "comparison": COMPARISON_SCHEMA, "correlation": CORRELATION_SCHEMA}


def _check_tables(directory: Path, weight_decay: float) -> None:
    """The tables R wrote have the columns the later stages read (first column: R's row names)."""
    for key, schema in RESULT_TABLES.items():
        path = layout.path(key, directory, wd=weight_decay)
        schema.validate(pd.read_csv(path, index_col=0), source=path.name)
