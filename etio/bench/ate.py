"""``etio bench ate``: every ATE of one weight decay (identification, both estimators, no refuters), timed."""

from __future__ import annotations

import time
from pathlib import Path

#: Seconds all ATEs of one weight decay may take.
BUDGET_S = 60.0


def ates(traces: Path, graphs: Path | None, weight_decay: float) -> dict:
    """Seconds of all ATE queries of ``weight_decay`` on ``traces`` with the graphs in ``graphs``
    (default: the authors' graphs)."""
    from etio.causal.graphs import read_graphs
    from etio.causal.query import estimate_ates
    from etio.core.schema import read_traces
    from etio.report import paper

    table, graph_set = read_traces(traces), read_graphs(graphs or paper.graphs_dir(weight_decay))
    start = time.perf_counter()
    n = len(estimate_ates(table, graph_set, weight_decay))
    seconds = time.perf_counter() - start
    return {"queries": n, "seconds": seconds, "budget_s": BUDGET_S}
