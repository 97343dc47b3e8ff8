"""The report's section on membership inference at low false-positive rates.

For every (loss, weight decay) slice: the median over configurations of each attack's AUC, TPR
at 0.1 % and 1 % FPR and empirical ε (with the number of configurations behind each median:
a configuration whose metric is missing for too few non-members does not count), and a log-log
ROC figure of the attacks scored on every point (loss threshold, LiRA, RMIA), drawn from the ROC
curves stored with each configuration's ``lowfpr`` result (median TPR over configurations at
each FPR; a configuration counts only down to its own resolution, 1 / its non-members).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from etio.core import layout
from etio.core.figure_files import save_figure
from etio.core.schema import slice_mask
from etio.core.vocabulary import MEASURES

TITLE = "The paper's findings at low FPR"

#: Methods of the summary table: trace-column prefix -> reader's name.
METHODS = {"Threshold": "loss threshold", "LiraOffline": "LiRA offline", "LiraOnline": "LiRA online",
           "Rmia": "RMIA", "MLLeak": "ML-Leaks", "MLLeakL": "ML-Leaks-l", "Top3MLLeak": "ML-Leaks top-3",
           "Top3MLLeakL": "ML-Leaks top-3-l", "Oak17": "Shokri (Oak17)", "Memguard": "top-3 vs MemGuard"}
#: Methods drawn in the ROC figures (scored on every pool and test point): prefix -> score name in lowfpr.json.
CURVE_METHODS = ("Threshold", "LiraOffline", "LiraOnline", "Rmia")
METRICS = (("AUC", "AUC"), ("TPR0.1", "TPR@0.1%"), ("TPR1", "TPR@1%"), ("Eps", "ε"))
#: The common FPR grid of the figures.
FPR_GRID = np.logspace(-4, 0, 41)


def summary(traces: pd.DataFrame) -> pd.DataFrame:
    """One row per (weight decay, loss, method): configurations, and per metric its median and count."""
    columns = {m.column for m in MEASURES}
    rows = []
    for wd in sorted(pd.to_numeric(traces["WeightDecay"]).dropna().unique()):
        for loss in sorted(traces["Loss"].dropna().unique()):
            part = traces[slice_mask(traces, loss, float(wd))]
            if part.empty:
                continue
            for prefix, name in METHODS.items():
                if f"{prefix}AUC" not in columns or f"{prefix}AUC" not in part or part[f"{prefix}AUC"].isna().all():
                    continue
                row = {"weight_decay": float(wd), "loss": loss, "attack": name, "configurations": len(part)}
                for metric, _ in METRICS:
                    values = pd.to_numeric(part[f"{prefix}{metric}"], errors="coerce").dropna()
                    row[f"{metric}_median"] = float(values.median()) if len(values) else math.nan
                    row[f"{metric}_n"] = int(len(values))
                rows.append(row)
    return pd.DataFrame(rows)


def headline(traces: pd.DataFrame) -> list[str]:
    """LiRA's and the threshold attack's TPR at 0.1 % and 1 % FPR, median over every configuration."""
    lines = []
    for prefix, name in (("LiraOffline", "LiRA offline"), ("LiraOnline", "LiRA online"),
                         ("Threshold", "the loss threshold")):
        parts = []
        for metric, label in (("TPR0.1", "0.1 %"), ("TPR1", "1 %")):
            values = pd.to_numeric(traces.get(f"{prefix}{metric}"), errors="coerce").dropna() \
                if f"{prefix}{metric}" in traces else pd.Series(dtype=float)
            parts.append(f"{values.median():.4f} at {label} FPR ({len(values)} of {len(traces)} configurations)"
                         if len(values) else f"missing at {label} FPR (too few non-members in every configuration)")
        lines.append(f"- {name}: TPR {parts[0]}, {parts[1]}")
    return lines


def stored_curves(store_dir: Path | str, keys: Sequence[str]) -> dict[str, list[dict]]:
    """The ROC curves stored in each configuration's ``lowfpr.json``, per method prefix."""
    from etio.traces.store import open_store

    store = open_store(store_dir)
    curves: dict[str, list[dict]] = {p: [] for p in CURVE_METHODS}
    for key in keys:
        result = store.read_attack(key, "lowfpr")
        if not result:
            continue
        for prefix, method in result.get("reported", {}).items():
            curve = result["metrics"][method].get("curve")
            if prefix in curves and curve:
                curves[prefix].append(curve)
    return curves


def median_curve(curves: Sequence[dict], grid: np.ndarray = FPR_GRID) -> np.ndarray:
    """Median over configurations of the TPR at each FPR of ``grid``; a configuration counts only at
    FPRs its non-members resolve (not below its first stored point)."""
    values = np.full((len(curves), len(grid)), np.nan)
    for i, c in enumerate(curves):
        fpr, tpr = np.asarray(c["FPR"]), np.asarray(c["TPR"])
        at = np.searchsorted(fpr, grid * (1 + 1e-12), side="right") - 1
        values[i] = np.where(at >= 0, tpr[np.maximum(at, 0)], np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(values, axis=0) if len(curves) else np.full(len(grid), np.nan)


def roc_figure(curves: dict[str, list[dict]], title: str, out_stem: Path) -> list[Path]:
    """Log-log ROC of the methods in ``curves`` (median over configurations), with chance as a dashed line."""
    from matplotlib.figure import Figure

    from etio.report.figures import PNG_DPI

    fig = Figure(figsize=(4.2, 3.8))
    ax = fig.subplots()
    ax.plot(FPR_GRID, FPR_GRID, ls="--", color="#999999", lw=0.8, label="chance")
    for prefix in CURVE_METHODS:
        if curves.get(prefix):
            tpr = median_curve(curves[prefix])
            keep = np.isfinite(tpr) & (tpr > 0)
            ax.plot(FPR_GRID[keep], tpr[keep], lw=1.4, label=f"{METHODS[prefix]} ({len(curves[prefix])})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(FPR_GRID[0], 1)
    ax.set_ylim(FPR_GRID[0], 1)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate (median over configurations)")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    svg, png = out_stem.parent / f"{out_stem.name}.svg", out_stem.parent / f"{out_stem.name}.png"
    save_figure(fig, svg, rc={"font.size": 9})
    save_figure(fig, png, rc={"font.size": 9}, dpi=PNG_DPI)
    return [svg, png]


def roc_stem(out_dir: Path, weight_decay: float, loss: str) -> Path:
    return layout.path("roc_figure", out_dir, wd=weight_decay, loss=loss)


#: The paper's attacks whose ROC rests on their own evaluation sets: stored result names -> reader's name
#: (the four ML-Leaks variants share their tuples and points, so one of them stands for all).
EVALUATION_SETS = ((("mlleak", "mlleak_l", "top3", "top3_l"), "ML-Leaks (each variant)"), (("oak17",), "Shokri (Oak17)"))


def evaluation_set_lines(store, keys: Sequence[str]) -> list[str]:
    """How many non-members stand behind the ML-Leaks and Shokri ROCs in this run (fewest and most over the
    configurations) and in how many configurations their TPR at each FPR is identified."""
    lines = []
    for names, label in EVALUATION_SETS:
        rocs = []
        for key in keys:
            result = next((r for r in (store.read_attack(key, n, warn=False) for n in names) if r and "roc" in r), None)
            if result is not None:
                rocs.append(result["roc"])
        if not rocs:
            continue
        negatives = [int(r["negatives"]) for r in rocs]
        found = ", ".join(f"at {percent} % FPR in {sum(r.get(f'TPR@{percent}%') is not None for r in rocs)}"
                          for percent in ("1", "0.1"))
        lines.append(f"- {label}: {min(negatives)}–{max(negatives)} non-members per configuration; its TPR is "
                     f"identified {found} of {len(rocs)} configurations.")
    return ["Non-members behind the ML-Leaks and Shokri ROCs in this run:", "", *lines, ""] if lines else []


def _md_table(table: pd.DataFrame) -> str:
    header = ["loss", "weight decay", "attack", "configurations"] + [label for _, label in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in table.iterrows():
        cells = [r["loss"].upper(), f"{r['weight_decay']:g}", r["attack"], str(r["configurations"])]
        for metric, _ in METRICS:
            median, n = r[f"{metric}_median"], int(r[f"{metric}_n"])
            cells.append(f"{median:.4f} ({n})" if n else "missing")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_markdown(verdicts: pd.DataFrame, not_learned: dict[str, dict[str, str]]) -> list[str]:
    """The Table-3 verdicts under accuracy beside those under TPR at low FPR, and what holds there."""
    from etio.causal.hypotheses import NOT_IDENTIFIED

    marks = [c for c in verdicts.columns if c not in ("query", "loss", "claim")]
    lines = ["| query | loss | claim | " + " | ".join(marks) + " |", "|" + "---|" * (3 + len(marks))]
    for _, r in verdicts.iterrows():
        lines.append(f"| {r['query']} | {r['loss'].upper()} | {r['claim']} | " + " | ".join(str(r[m]) for m in marks)
                     + " |")
    out = ["### Table 3 under accuracy and under TPR at low FPR (weight decay 5e-4)", "",
           "Each low-FPR column answers the hypothesis with the attacks' TPR at that FPR in place of their "
           "accuracy: graphs learned and queried as for accuracy (same nodes, centroid distance, blacklist, "
           "method and estimators). ? where the attack's graph could not be learned.", "", *lines, ""]
    for metric in ("TPR0.1", "TPR1"):
        for estimator in ("paper", "sound"):
            column = f"{metric} ({estimator})"
            if column not in verdicts:
                continue
            answered = verdicts[verdicts[column] != NOT_IDENTIFIED]
            same = int((answered[column] == answered[f"accuracy ({estimator})"]).sum())
            holds = ", ".join(f"{r['query']} {r['loss'].upper()}" for _, r in answered.iterrows()
                              if r[column] == r[f"accuracy ({estimator})"]) or "none"
            out.append(f"- {metric}, {estimator} estimator: {len(answered)} of {len(verdicts)} verdicts answered, "
                       f"{same} the same as under accuracy ({holds}).")
    for metric, reasons in not_learned.items():
        for attack, reason in reasons.items():
            out.append(f"- no {metric} graph for {attack}: {reason}.")
    return out + [""]


def predictive_markdown(predictive: pd.DataFrame) -> list[str]:
    """Table-2 style: each low-FPR graph's predictive correlation beside the accuracy graph's."""
    from etio.causal.lowfpr import LOW_FPR_PREFIX
    from etio.core.schema import from_r_name
    from etio.core.vocabulary import display

    def measured(outcome: str, attack: str) -> str:
        attack = from_r_name(attack)
        return display(attack) if outcome == "accuracy" else display(f"{LOW_FPR_PREFIX[attack]}{outcome}")

    lines = ["| loss | outcome | best single variable | its correlation | graph's predictive correlation |",
             "|---|---|---|---|---|"]
    for _, r in predictive.iterrows():
        lines.append(f"| {str(r['Loss']).upper()} | {measured(r['outcome'], r['Attack'])} | "
                     f"{display(r['Max Corr Var'])} | {r['Max Corr']:.3f} | {r['PredCor-w_dk']:.3f} |")
    return ["### Predictive power of the graphs at low FPR (weight decay 5e-4)", "",
            "As Table 2: the correlation between the attack's values and the graph's predictions "
            "(hold-out, with domain knowledge), beside the single variable most correlated with it.", "",
            *lines, ""]


def outcome_graphs_markdown(summary: pd.DataFrame, reasons: dict[float, dict[str, str]]) -> list[str]:
    """LiRA's, RMIA's and the loss threshold's low-FPR graphs: each outcome's parents and, as Table 2, the
    graph's predictive correlation beside the best single correlation."""
    from etio.core.vocabulary import display

    out = ["### What causes LiRA, RMIA and the loss threshold at low FPR", "",
           "Each attack's TPR at 0.1 % and at 1 % FPR is the attack node of its own graph, learned per loss and "
           "weight decay as the paper's attacks' graphs are (same method, whitelist and blacklist; the loss "
           "threshold's nodes). Parents: the outcome's direct causes in the learned graph. As Table 2: the "
           "graph's hold-out predictive correlation beside the single variable most correlated with the outcome "
           "among those prior work names (the generalization gap, as for the loss threshold). Graphs in "
           "`graphs/lowfpr-attacks-wd_<wd>/`.", ""]
    if len(summary):
        out += ["| weight decay | loss | outcome | parents | best single variable | its correlation | "
                "graph's predictive correlation |", "|---|---|---|---|---|---|---|"]
        for _, r in summary.iterrows():
            parents = ", ".join(display(p) for p in str(r["parents"]).split(";") if p) or "none"
            variable = display(r["max_corr_variable"]) if r["max_corr_variable"] else "–"
            out.append(f"| {r['weight_decay']:g} | {str(r['loss']).upper()} | {display(r['outcome'])} | {parents} | "
                       f"{variable} | {r['max_corr']:.3f} | {r['predcor']:.3f} |")
        out.append("")
    for wd, missing in sorted(reasons.items()):
        for outcome, reason in missing.items():
            out.append(f"- no graph for {display(outcome)} at weight decay {wd:g}: {reason}.")
    return out + [""]


def lowfpr_section(traces: pd.DataFrame, store_dir: Path | str, figures_dir: Path | str,
                   verdicts: pd.DataFrame | None = None, not_learned: dict[str, dict[str, str]] | None = None,
                   predictive: pd.DataFrame | None = None,
                   outcome_graphs: tuple[pd.DataFrame, dict[float, dict[str, str]]] | None = None):
    """The report section (:class:`etio.report.document.ReportSection`), or None when the run has no
    low-FPR results. ``verdicts``: the Table-3 verdicts under accuracy and under each TPR (both
    estimators), ``not_learned``: per metric, the attacks without a low-FPR graph and why;
    ``outcome_graphs``: the summary of LiRA's, RMIA's and the loss threshold's own graphs
    (:func:`etio.causal.lowfpr.graph_summary`) and, per weight decay, the outcomes without one."""
    from etio.report.document import ReportSection
    from etio.traces.store import open_store

    table = summary(traces)
    if table.empty:
        return None
    store = open_store(store_dir)
    keys = store.keys()
    figures = []
    for (wd, loss), _ in table.groupby(["weight_decay", "loss"], sort=True):
        rows = traces.reset_index(drop=True)
        mask = slice_mask(rows, loss, float(wd)).to_numpy()
        slice_keys = [k for k, m in zip(keys, mask) if m] if len(keys) == len(rows) else []
        curves = stored_curves(store_dir, slice_keys)
        if any(curves.values()):
            title = f"{loss.upper()} loss, weight decay {wd:g}"
            svg, png = roc_figure(curves, title, roc_stem(Path(figures_dir), float(wd), loss))
            caption = (f"ROC on log-log axes, {title}: median TPR over configurations (their number in the "
                       "legend) at each FPR.")
            figures += [(svg, caption), (png, caption)]
    md = [
        "Every model of a configuration is attacked on every pool and test point, with the configuration's "
        "other models as references (LiRA, RMIA; see `docs/lowfpr.md`). The ML-Leaks and Shokri attacks' "
        "accuracies are those of their balanced evaluation sets, as in the paper; their ROCs use every point "
        "their attack models can score soundly: ML-Leaks each tuple's target's whole training subset (members) "
        "against every test point and every pool point outside the tuple's three subsets (its shadow's and "
        "non-member model's subsets trained the attack model), tuples pooled; Shokri the target's whole subset "
        "against every test point its shadows did not use, seeds and classes pooled. Each cell is the median "
        "over the slice's configurations, with the number of configurations that have the metric: a TPR at "
        "FPR α is missing where fewer than 10/α non-members stand behind it. ε is the empirical lower bound "
        "at δ = 1e-5 (largest over thresholds; these models are not trained with differential privacy, so it "
        "measures leakage, not a guarantee).",
        "",
        *evaluation_set_lines(store, keys),
        "Median TPR over all configurations:",
        "",
        *headline(traces),
        "",
        _md_table(table),
        "",
    ]
    if verdicts is not None:
        md += verdict_markdown(verdicts, not_learned or {})
        if predictive is not None and len(predictive):
            md += predictive_markdown(predictive)
    else:
        md.append("The Table-3 hypotheses are not answered at low FPR in this run (it has no Table 3 at weight "
                  "decay 5e-4, or no low-FPR attack results).")
    if outcome_graphs is not None:
        md += outcome_graphs_markdown(*outcome_graphs)
    return ReportSection(anchor="low-fpr", title=TITLE, markdown="\n".join(md), figures=tuple(figures))

