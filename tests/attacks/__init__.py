"""Tests of etio.attacks."""
