"""Stages 2-3 of Figure 4: the causal graph (bnlearn through R) and the queries on it.

The R bridge, structure learning, graph files, identification of effects (dowhy,
``effects``), their estimation by the paper's and a sound estimator (``estimation``), the
paper's hypotheses, the confounding pitfalls, and the ground-truth check of learn -> query
(``validation``).
"""
