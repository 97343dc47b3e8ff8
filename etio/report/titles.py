"""The tables' titles, apart from the code that builds them: the command line registers one command
per table from them without loading pandas or the causal stage."""

from __future__ import annotations

#: The robust study's table (``etio table robust``): not one of the paper's, so not a command of its own.
ROBUST_TITLE = "Robust models (Song et al.): hypotheses R1-R3 as ATE queries, one verdict per estimator"
EXTRA_TABLES = {"robust": ROBUST_TITLE}

#: The paper's tables, by command name, with the title every output of them carries.
TITLES = {
    "table2": "Table 2: predictive power of the graphs vs the best single correlation",
    "table3": "Table 3: prior-work hypotheses Q1-Q9 as ATE queries (weight decay 5e-4)",
    "table5": "Table 5: ATEs, CE-trained models, weight decay 5e-4",
    "table6": "Table 6: ATEs, MSE-trained models, weight decay 5e-4",
    "table7": "Table 7: ATEs, CE-trained models, weight decay 5e-3 (L2 regularization)",
    "table8": "Table 8: ATEs, MSE-trained models, weight decay 5e-3 (L2 regularization)",
}
