"""Command-line entry point (filled in by the foundation work)."""


def main(argv=None) -> int:  # pragma: no cover - replaced below
    return 0
