"""etio: membership-inference attacks and generalization, a causal reproduction package.

The pipeline follows Figure 4 of Baluta et al. (CCS 2022):
traces (``etio.traces.stage``, ``etio.attacks``) -> learn graph (``etio.causal.learning`` through ``r/``)
-> query (``etio.causal.query``) -> tables (``etio.report.tables``).
"""

__version__ = "0.1.0"
