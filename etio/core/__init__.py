"""Core: the vocabulary and trace schema, errors, paths and provenance that every stage uses.

Nothing here imports another etio package.
"""
