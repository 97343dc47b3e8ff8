"""CLI commands of the traces area (placeholder until the area lands)."""


def register(app, bench_app) -> None:
    pass
