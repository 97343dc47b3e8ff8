"""Tests of the R layer (r/) and its bnlearn conformance."""
