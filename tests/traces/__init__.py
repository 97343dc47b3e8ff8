"""Tests of etio.traces."""
