"""The report's section on the robust study's inference strategies: accuracy beside the ROC metrics.

Per (loss, weight decay) slice, PGD budget and strategy (Song et al.'s Table 7 strategies,
:mod:`etio.attacks.robust`): the number of configurations and the median over them of the balanced
accuracy, the AUC, the TPR at 0.1 % and 1 % FPR and the empirical ε lower bound, each with the
number of configurations that have it (a TPR read from too few non-members is missing).
"""

from __future__ import annotations

import math

import pandas as pd

from etio.core.schema import ROBUST_STRATEGIES, slice_mask

TITLE = "Robust models: the inference strategies' accuracy and ROC"
#: (column suffix, header) of each metric, accuracy first.
METRICS = (("Acc", "balanced accuracy"), ("AUC", "AUC"), ("TPR0.1", "TPR@0.1%"), ("TPR1", "TPR@1%"),
           ("Eps", "empirical ε"))


def summary(traces: pd.DataFrame) -> pd.DataFrame:
    """One row per (weight decay, loss, PGD budget, strategy) with an accuracy: configurations, and per
    metric its median over them and how many have it."""
    rows = []
    if "AdvEps" not in traces:
        return pd.DataFrame(rows)
    for wd in sorted(pd.to_numeric(traces["WeightDecay"]).dropna().unique()):
        for loss in sorted(traces["Loss"].dropna().unique()):
            part = traces[slice_mask(traces, loss, float(wd))]
            for budget in sorted(pd.to_numeric(part["AdvEps"]).dropna().unique()):
                rows_at = part[pd.to_numeric(part["AdvEps"]) == budget]
                for prefix, name in ROBUST_STRATEGIES.values():
                    if f"{prefix}Acc" not in rows_at or rows_at[f"{prefix}Acc"].isna().all():
                        continue
                    row = {"weight_decay": float(wd), "loss": loss, "adv_eps": float(budget), "strategy": name,
                           "configurations": len(rows_at)}
                    for metric, _ in METRICS:
                        column = f"{prefix}{metric}"
                        values = pd.to_numeric(rows_at[column], errors="coerce").dropna() if column in rows_at \
                            else pd.Series(dtype=float)
                        row[f"{metric}_median"] = float(values.median()) if len(values) else math.nan
                        row[f"{metric}_n"] = int(len(values))
                    rows.append(row)
    return pd.DataFrame(rows)


def _md_table(table: pd.DataFrame) -> str:
    header = ["loss", "weight decay", "PGD budget ε", "strategy", "configurations"] + [h for _, h in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in table.iterrows():
        cells = [r["loss"].upper(), f"{r['weight_decay']:g}", f"{r['adv_eps']:g}", r["strategy"],
                 str(r["configurations"])]
        for metric, _ in METRICS:
            median, n = r[f"{metric}_median"], int(r[f"{metric}_n"])
            cells.append(f"{median:.4f} ({n})" if n else "missing")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def robust_section(traces: pd.DataFrame):
    """The report section (:class:`etio.report.document.ReportSection`), or None when the run has no robust
    strategy results."""
    from etio.report.document import ReportSection

    table = summary(traces)
    if table.empty:
        return None
    md = [
        "Each strategy's per-example scores (confidence-infer: the confidence in the true label minus its "
        "class's threshold; model-infer: the inference network's member-minus-non-member logit) are pooled over "
        "classes and attacked targets into one ROC per configuration (see `docs/lowfpr.md`). Each cell is the "
        "median over the configurations of that budget, with the number of configurations that have the metric: "
        "a TPR at FPR α is missing where fewer than 10/α non-members stand behind it, as in most robust "
        "evaluation sets. The empirical ε is the lower bound at δ = 1e-5, a measure of leakage, not the PGD budget.",
        "",
        _md_table(table),
        "",
    ]
    return ReportSection(anchor="robust-roc", title=TITLE, markdown="\n".join(md))
