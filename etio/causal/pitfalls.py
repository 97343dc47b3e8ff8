"""The pitfalls of testing hypotheses with correlations (paper §2, Figs. 2 and 3).

On the shadow model attack (``Oak17Acc``) of one (weight decay, loss) slice:

* E1 - naive effect of AccDiff: the unadjusted contrast E[Y | X = max] - E[Y | X = min] under a
  linear model (a regression of the attack on AccDiff alone);
* E2 - the effect of AccDiff adjusted for the confounder NumParams (graph NumParams -> AccDiff,
  NumParams -> attack, AccDiff -> attack);
* E3 - the total effect of NumParams (nothing to adjust for: it is a root);
* E4 - the over-controlled effect of NumParams, adjusted for its mediator AccDiff.

Fig. 3 contrast, on ``Top3MLLeakAcc`` with the centroid distance W as separation score: the
effect of AccDiff when W is assumed to influence the attack (adjust for NumParams and W) and
when it is not (W is then no confounder; adjusting for NumParams alone).

Identification of every query comes from dowhy on the small graph; the estimate is the query
stage's sound estimator (backdoor linear regression with the modifiers' main effects; the
p-value tests the ATE itself), so each effect is a min -> max contrast.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pandas as pd

from etio.core.errors import EtioInputError
from etio.core.outputs import check_output_dir, output_dir
from etio.core.provenance import provenance, write_json
from etio.causal.estimators import ESTIMATORS
from etio.causal.identify import identify
from etio.causal.query import ask, query_slice
from etio.core.schema import centroid_for

_X, _Z = "AccDiff", "NumParams"

def pitfall_queries(attack: str = "Oak17Acc", separation_attack: str = "Top3MLLeakAcc") -> dict[str, tuple]:
    """name -> (graph arcs, treatment, outcome, description) of each effect of §2."""
    w = centroid_for(separation_attack)
    confounded = [(_Z, _X), (_Z, attack), (_X, attack)]
    return {
        "E1": ([(_X, attack)], _X, attack, "naive: AccDiff alone, confounder ignored"),
        "E2": (confounded, _X, attack, "AccDiff adjusted for NumParams (Fig. 2)"),
        "E3": (confounded, _Z, attack, "total effect of NumParams (Fig. 2)"),
        "E4": ([(_X, _Z), (_Z, attack), (_X, attack)], _Z, attack, "NumParams over-controlled for AccDiff (Fig. 2)"),
        "Fig3a": ([(_Z, _X), (_Z, separation_attack), (w, _X), (w, separation_attack), (_X, separation_attack)],
                  _X, separation_attack, "AccDiff, separation W assumed to cause the attack (Fig. 3a)"),
        "Fig3b": ([(_Z, _X), (_Z, separation_attack), (w, _X), (_X, separation_attack)],
                  _X, separation_attack, "AccDiff, separation W assumed not to cause the attack (Fig. 3b)"),
    }


def estimate_pitfalls(data: pd.DataFrame, attack: str = "Oak17Acc", separation_attack: str = "Top3MLLeakAcc") -> pd.DataFrame:
    """One row per effect: name, treatment, outcome, adjustment set, estimate, description.

    ``data`` holds numeric columns AccDiff, NumParams, the two attacks and the separation attack's
    centroid distance. E4 deliberately uses a graph in which AccDiff causes NumParams, so that
    the backdoor criterion adjusts for AccDiff: that is the over-controlled estimate of §2.
    """
    rows = []
    for name, (arcs, treatment, outcome, description) in pitfall_queries(attack, separation_attack).items():
        graph = nx.DiGraph(arcs)
        ident = identify(graph, treatment, outcome)
        cols = [treatment, outcome, *ident.backdoor_set, *ident.effect_modifiers]
        est = ask(data[list(dict.fromkeys(cols))].dropna(), None, graph, ident,
                  estimators={"sound": ESTIMATORS["sound"]}).estimates["sound"]
        rows.append({"effect": name, "treatment": treatment, "outcome": outcome,
                     "adjusted_for": ";".join(ident.backdoor_set), "estimate": est.ate,
                     "p-value": est.p_value, "description": description})
    return pd.DataFrame(rows)


def draw_graph(arcs, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from etio.core.figure_files import save_figure

    graph = nx.DiGraph(arcs)
    fig, ax = plt.subplots(figsize=(4, 3))
    pos = nx.circular_layout(graph)
    nx.draw_networkx(graph, pos, ax=ax, node_color="#dde7f3", node_size=2200, font_size=7, arrowsize=15)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)     # no date, fixed ids: the same bytes on every run
    plt.close(fig)


def run_pitfalls(traces: pd.DataFrame, out: Path, weight_decay: float = 0.0005, loss: str = "ce",
                 attack: str = "Oak17Acc", separation_attack: str = "Top3MLLeakAcc", *, force: bool = False,
                 inputs=()) -> pd.DataFrame:
    """Estimate E1-E4 and the Fig. 3 contrast on a trace slice; write CSV, provenance and the
    small graphs (SVG and PNG) into ``out`` atomically (rules: :mod:`etio.core.outputs`)."""
    check_output_dir(Path(out), "pitfalls", force=force, inputs=inputs)
    columns = [_X, _Z, attack, separation_attack, centroid_for(separation_attack)]
    data = query_slice(traces, weight_decay, loss, attack, columns)
    if len(data) < 5:
        raise EtioInputError(f"only {len(data)} complete {loss} rows at weight decay {weight_decay:g}; the pitfalls need at least 5")
    table = estimate_pitfalls(data, attack, separation_attack)
    with output_dir(Path(out), "pitfalls", force=force, inputs=inputs) as staging:
        table.to_csv(staging / "pitfalls.csv", index=False)
        for name, (arcs, *_rest, description) in pitfall_queries(attack, separation_attack).items():
            for ext in ("svg", "png"):
                draw_graph(arcs, staging / f"{name}.{ext}", f"{name}: {description}")
        write_json(staging / "provenance.json", provenance(
            "pitfalls", config={"weight_decay": weight_decay, "loss": loss, "attack": attack,
                                "separation_attack": separation_attack, "n_rows": len(data)}))
    return table
