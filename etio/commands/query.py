"""CLI commands of the query area (placeholder until the area lands)."""


def register(app, bench_app) -> None:
    pass
