"""CLI commands of the attack area (placeholder until the area lands)."""


def register(app, bench_app) -> None:
    pass
