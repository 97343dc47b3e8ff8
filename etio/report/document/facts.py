"""What a run is, against what the paper ran: the headline of the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from etio.traces.models import PAPER_ARCHITECTURES


@dataclass(frozen=True)
class RunFacts:
    """What a set of results was computed from: the headline of the report.

    ``rows_per_slice`` maps ``"<loss> wd=<weight decay>"`` to the number of trace rows (models
    configurations) that one graph was learned from.
    """

    datasets: tuple[str, ...]
    architectures: tuple[str, ...]
    rows_per_slice: Mapping[str, int]
    backend: str | None = None
    method: str | None = None          # "boot" or "cv"
    estimator: str = "backdoor linear regression (dowhy)"
    widths: str = ""
    train_sizes: str = ""


#: The paper's experiments (its §5 and Table 4; the authors' trace: 880 rows, spec §8.1).
PAPER_FACTS = RunFacts(
    datasets=("cifar10", "cifar100", "mnist"),
    architectures=PAPER_ARCHITECTURES,
    rows_per_slice={"ce wd=0.0005": 280, "ce wd=0.005": 280, "mse wd=0.0005": 160, "mse wd=0.005": 160},
    backend="bnlearn 4.7", method="cv",
    estimator="backdoor linear regression (dowhy 0.7)",
    widths="AlexNet 16-256, DenseNet161/ResNet34 2-32, MLP 16-256 (5 each)", train_sizes="1000, 5000",
)

_METHOD_TEXT = {"boot": "bootstrap networks (the paper's text)", "cv": "cross-validation networks (the authors' code)"}


def _facts_rows(ours: RunFacts, paper: RunFacts) -> list[tuple[str, str, str, bool]]:
    def rows(f: RunFacts) -> str:
        return ", ".join(f"{k}: {v}" for k, v in f.rows_per_slice.items()) or "none"

    def method(f: RunFacts) -> str:
        return _METHOD_TEXT.get(f.method or "", f.method or "not recorded")

    return [
        ("dataset", ", ".join(ours.datasets), ", ".join(paper.datasets), set(ours.datasets) == set(paper.datasets)),
        ("architectures", ", ".join(ours.architectures), ", ".join(paper.architectures),
         set(ours.architectures) == set(paper.architectures)),
        ("widths", ours.widths or "not recorded", paper.widths, ours.widths == paper.widths),
        ("training-set sizes", ours.train_sizes or "not recorded", paper.train_sizes,
         ours.train_sizes == paper.train_sizes),
        ("rows per (loss, weight decay)", rows(ours), rows(paper), dict(ours.rows_per_slice) == dict(paper.rows_per_slice)),
        # Any backend etio learns with gives bnlearn 4.7's results (r/backend.R); the record says so.
        ("structure-learning backend", ours.backend or "not recorded", paper.backend or "",
         (ours.backend or "").endswith(f"results as {paper.backend}")),
        ("networks behind the averaged graph", method(ours), method(paper), ours.method == paper.method),
        ("effect estimator", ours.estimator, paper.estimator,
         ours.estimator.split(" (")[0] == paper.estimator.split(" (")[0]),
    ]


def headline(facts: RunFacts | None, mode: str) -> dict[str, Any]:
    if mode == "paper" or facts is None:
        return {"mode": "paper" if mode == "paper" else "unknown", "rows": [], "like_for_like": None,
                "differs": [], "paper": PAPER_FACTS, "table_rows": []}
    rows = _facts_rows(facts, PAPER_FACTS)
    differs = [label for label, _, _, same in rows if not same and label in (
        "dataset", "architectures", "rows per (loss, weight decay)")]
    return {"mode": "run", "rows": rows, "like_for_like": not differs, "differs": differs, "paper": PAPER_FACTS,
            "table_rows": [[label, ours, paper, "yes" if same else "**no**"] for label, ours, paper, same in rows]}

