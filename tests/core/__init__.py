"""Tests of etio.core."""
