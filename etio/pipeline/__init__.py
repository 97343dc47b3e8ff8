"""The whole pipeline: stage after stage, resumable, into one run directory."""
