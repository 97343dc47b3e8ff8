"""Tests of etio.causal."""
