"""Moved to :mod:`embedkit.trainers.sgns.engine` (this path is kept for old imports)."""
from .sgns.engine import *  # noqa: F401,F403
