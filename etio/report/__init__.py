"""Stage 4 of Figure 4: the paper's tables, figures and the report, beside the authors' results."""
