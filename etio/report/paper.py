"""The authors' published artifacts shipped in ``etio/data/paper`` (see its NOTICE.md).

Graphs of both weight decays, their ATE CSVs (the supersets of the paper's Tables 3, 5-8) and
the predictive-power / correlation results (Table 2), read into the project's own tables so
every ``--paper`` command runs without data.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from etio.core.errors import EtioInputError
from etio.causal.estimators import Status
from etio.causal.graphs import read_graphs
from etio.causal.identify import identify_graphs
from etio.causal.overlap import defining_by_identities, not_identifiable_reason
from etio.causal.query import ATE_SCHEMA
from etio.core.schema import WEIGHT_DECAYS, from_r_name, same_weight_decay
from etio.core import layout
from etio.core.paths import DATA_DIR

PAPER_DIR = DATA_DIR / "paper"



def _wd_key(weight_decay: float) -> float:
    for wd in WEIGHT_DECAYS:
        if same_weight_decay(wd, weight_decay):
            return wd
    raise EtioInputError(f"the paper has no results for weight decay {weight_decay:g}; "
                         f"it has {', '.join(f'{w:g}' for w in WEIGHT_DECAYS)}")


def graphs_dir(weight_decay: float) -> Path:
    """The authors' averaged networks of one weight decay (``<loss>-<attack>-cv_avg_net_discovery.dot``)."""
    return layout.path("authors_graphs", PAPER_DIR, wd=_wd_key(weight_decay))


def ate_csv(weight_decay: float) -> Path:
    return layout.path("authors_ates", PAPER_DIR, wd=_wd_key(weight_decay))


def query_csv(weight_decay: float, loss: str) -> Path:
    """The authors' ``.ce.csv`` / ``.mse.csv``: the rows of the paper's Tables 5-8."""
    return layout.path("authors_queries", PAPER_DIR, wd=_wd_key(weight_decay), loss=loss)


def results_csv(weight_decay: float) -> Path:
    """Predictive power and best single correlation per (loss, attack) (Table 2)."""
    return layout.path("comparison", PAPER_DIR, wd=_wd_key(weight_decay))


@lru_cache(maxsize=None)
def _identifications(weight_decay: float) -> pd.DataFrame:
    return identify_graphs(read_graphs(graphs_dir(weight_decay)))


def ates(weight_decay: float) -> pd.DataFrame:
    """The authors' ATEs of one weight decay as an :data:`etio.causal.query.ATE_SCHEMA` table.

    Their numbers are the paper estimator's (``ate_paper``, ``p_value_paper``); the sound columns
    are empty (they need the trace data). Their CSV writes ATE 0 and p-value 0 for a treatment
    without a directed path to the attack; here that is status ``no causal path`` with p-value
    NaN. A cell whose adjustment set - dowhy's backdoor set on the authors' graph - fixes the
    treatment through the traces' identities is ``not identifiable`` (decided from the graph and
    the identities alone); its published number stays, labelled as the paper's.
    """
    wd = _wd_key(weight_decay)
    raw = pd.read_csv(ate_csv(wd))
    no_path = raw["ATE Mean value"] == 0
    features = raw["Feature"].map(from_r_name)
    ident = _identifications(wd).set_index(["loss", "attack", "feature"])["backdoor_set"]
    backdoor = [ident.get((loss, attack, feature), "") for loss, attack, feature in zip(raw["Loss"], raw["Attack"], features)]
    status, reason = [], []
    for feature, sets, none in zip(features, backdoor, no_path):
        defining = defining_by_identities(feature, [v for v in sets.split(";") if v])
        if none:
            status.append(Status.NO_PATH)
            reason.append("no directed path in the authors' graph")
        elif defining:
            status.append(Status.NOT_IDENTIFIABLE)
            reason.append(not_identifiable_reason(feature, defining))
        else:
            status.append(Status.ESTIMATED)
            reason.append("")
    table = pd.DataFrame({
        "loss": raw["Loss"], "weight_decay": wd, "attack": raw["Attack"], "feature": features,
        "status": status, "reason": reason,
        "ate_paper": raw["ATE Mean value"].astype(float),
        "p_value_paper": raw["ATE p-value"].astype(float).where(~no_path, np.nan),
        "ate": np.nan, "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "q_value": np.nan,
        "backdoor_set": backdoor,
    })
    return ATE_SCHEMA.validate(table, source=str(ate_csv(wd)))


def results(weight_decay: float) -> pd.DataFrame:
    """The authors' ``results-cont-wd_*.csv`` (Loss, Attack, Max Corr Var, Max Corr, PredCor-w_dk, MSE-w_dk)."""
    return pd.read_csv(results_csv(weight_decay), index_col=0)
