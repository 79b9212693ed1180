"""CLI verbs of this area (filled in by its issue)."""


def register(groups) -> None:
    """Add this area's sub-commands to groups.top / groups.train / groups.eval."""
