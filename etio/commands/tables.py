"""CLI commands of the tables area (placeholder until the area lands)."""


def register(app, bench_app) -> None:
    pass
