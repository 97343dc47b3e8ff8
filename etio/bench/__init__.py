"""Benchmarks: timings of the pipeline's stages on this machine, behind ``etio bench``.

Each module measures one stage and returns what it measured; the ``etio bench`` commands
print it. Benchmarks read and write only inside their own temporary directories.
"""
