"""Tests of etio.report."""
