"""Tests that run the whole study (traces, attacks, graphs, tables) and its executors."""
