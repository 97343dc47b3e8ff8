"""CLI commands of the learn area (placeholder until the area lands)."""


def register(app, bench_app) -> None:
    pass
