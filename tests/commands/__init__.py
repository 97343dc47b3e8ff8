"""Tests of the command line: help, start-up, bad input and outputs of every command."""
