"""Stages 2-3 of Figure 4: the causal graph (bnlearn through R) and the queries on it.

The R bridge, structure learning, graph files (``graphs``), and the query stage as dowhy's
identify (``identify``) -> check (``overlap``) -> estimate (``estimators``: the paper's and a
sound estimator) -> refute (``refuters``), all through ``query``; the paper's hypotheses, the
robust-models hypotheses, the confounding pitfalls, and the ground-truth check of learn -> query
(``validation``).
"""
