"""Patterns: agents made of agents. Each only decides who runs next, with what."""

from podium.patterns.parallel import Parallel, ParallelResult, QuorumNotMet
from podium.patterns.router import RouteDecision, Router, Rule
from podium.patterns.sequential import Sequential

__all__ = [
    "Parallel",
    "ParallelResult",
    "QuorumNotMet",
    "RouteDecision",
    "Router",
    "Rule",
    "Sequential",
]
