"""Stages 2-3 of Figure 4: the causal graph (bnlearn through R) and the queries on it.

The R bridge, structure learning, graph files, identification and estimation of effects
(dowhy), the paper's hypotheses and the confounding pitfalls.
"""
