"""The report's section on the two estimators: both Table 3 verdicts side by side, each change
with its reasons, the status of every query and the ATE forest plots.

:func:`estimator_section` builds it from the ATE tables of a run; its ``report_section()`` is
what :func:`etio.report.document.write_report` renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pandas as pd

from etio.causal.estimators import Status
from etio.causal.hypotheses import STEPS, verdict_changes
from etio.report.figures import ate_forest_plot, ate_forest_stem, figure_caption
from etio.report.tables import NORMAL_WD

TITLE = "Estimators: the paper's and the sound one"

_INTRO = (
    "Every query is estimated twice. *paper*: dowhy's `estimate_effect` (`backdoor.linear_regression`), "
    "whose p-value tests the treatment's coefficient in a model without the effect modifiers' main effects "
    "(the effect where every modifier is 0). *sound*: the same adjustment with the modifiers' main effects, "
    "the ATE's own delta-method test with standard errors clustered by training run, Benjamini-Hochberg "
    "q-values, and no number where the treatment is a deterministic function of its adjustment set "
    "(*not identifiable*). Table 3 above uses the paper estimator; the verdicts of both are below, and each "
    "change names the corrections, applied in the order " + ", ".join(f"*{s}*" for s in list(STEPS)[1:])
    + ", at which it happens."
)


@dataclass
class EstimatorSection:
    """Verdicts under both estimators, status counts and the forest plots of a run."""

    verdicts: pd.DataFrame | None          # hypotheses.verdict_changes (weight decay 5e-4)
    status_counts: pd.DataFrame            # weight decay, loss, one column per status
    not_identifiable: pd.DataFrame         # the cells without a number, with their reasons
    figures: list[Path] = field(default_factory=list)
    title: str = TITLE

    @property
    def changes(self) -> pd.DataFrame | None:
        return None if self.verdicts is None else self.verdicts[self.verdicts["changed"]]

    def markdown(self) -> str:
        """The section's body (its title is the report's heading)."""
        md = [_INTRO, ""]
        if self.verdicts is not None:
            md += ["### Table 3 under both estimators (weight decay 5e-4)", "",
                   _md(self.verdicts[["query", "loss", "claim", "paper", "sound", "reasons"]]), ""]
            changes = self.changes
            md += [f"{len(changes)} of {len(self.verdicts)} verdicts change.", ""]
            md += [f"- **{r.query} {r.loss.upper()}**: {r.paper} → {r.sound}: {r.reasons}" for r in changes.itertuples()]
            md.append("")
        md += ["### Status of every query", "", _md(self.status_counts), ""]
        if len(self.not_identifiable):
            md += ["Cells without a number (not identifiable):", "", _md(self.not_identifiable), ""]
        return "\n".join(md)

    def report_section(self):
        """The section as the report renders it (:class:`etio.report.document.ReportSection`)."""
        from etio.report.document import ReportSection

        pngs = [p for p in self.figures if p.suffix == ".png"]
        return ReportSection(anchor="estimators", title=self.title, markdown=self.markdown(),
                             figures=tuple((p, figure_caption(p)) for p in pngs))


def _md(table: pd.DataFrame) -> str:
    text = table.astype(str)
    lines = ["| " + " | ".join(text.columns) + " |", "|" + "---|" * len(text.columns)]
    lines += ["| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in text.itertuples(index=False)]
    return "\n".join(lines)


def status_counts(ates: Mapping[float, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for wd, table in sorted(ates.items()):
        for loss, part in table.groupby("loss", sort=True):
            counts = part["status"].value_counts()
            rows.append({"loss": loss, "weight decay": f"{wd:g}", **{s: int(counts.get(s, 0)) for s in Status.of_ates()}})
    return pd.DataFrame(rows, columns=["loss", "weight decay", *Status.of_ates()])


def estimator_section(ates: Mapping[float, pd.DataFrame], figures_dir: Path | str | None = None,
                      table3: bool = True) -> EstimatorSection:
    """The section for a run's ATE tables (weight decay -> table); forest plots are written
    under ``figures_dir`` (none when it is None). ``table3``: whether the run has the paper's
    attacks, whose Table 3 verdicts the section compares (a robust-only study has none)."""
    verdicts = verdict_changes(ates[NORMAL_WD]) if table3 and NORMAL_WD in ates else None
    unidentified = pd.concat([t[t["status"] == Status.NOT_IDENTIFIABLE] for t in ates.values()] or [pd.DataFrame()])
    listing = pd.DataFrame({
        "loss": unidentified.get("loss", []),
        "weight decay": [f"{wd:g}" for wd in unidentified.get("weight_decay", [])], "attack": unidentified.get("attack", []),
        "feature": unidentified.get("feature", []), "reason": unidentified.get("reason", []),
    })
    figures: list[Path] = []
    if figures_dir is not None:
        for wd, table in sorted(ates.items()):
            for loss in sorted(set(table["loss"])):
                figures += ate_forest_plot(table, loss, wd, ate_forest_stem(Path(figures_dir), wd, loss))
    return EstimatorSection(verdicts=verdicts, status_counts=status_counts(ates), not_identifiable=listing,
                            figures=figures)

