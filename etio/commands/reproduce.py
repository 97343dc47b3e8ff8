"""CLI commands of the reproduce area (placeholder until the area lands)."""


def register(app, bench_app) -> None:
    pass
