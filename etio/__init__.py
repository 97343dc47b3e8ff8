"""etio: membership-inference attacks and generalization, a causal reproduction package.

The pipeline follows Figure 4 of Baluta et al. (CCS 2022):
traces (``etio.traces``, ``etio.attacks``) -> learn graph (``etio.learn`` through ``r/``)
-> query (``etio.query``) -> tables (``etio.tables``).
"""

__version__ = "0.1.0"
