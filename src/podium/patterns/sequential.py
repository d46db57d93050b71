"""`Sequential`: each agent's output is the next one's input."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from podium.agents.base import AgentBase
from podium.agents.kinds import Builder, Canvas, Loc, NodeFields, register
from podium.errors import UsageError

if TYPE_CHECKING:
    from podium.agents.kinds import NodeSpec
    from podium.runtime.budget import Budget
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry


class Sequential(AgentBase[Any, Any]):
    """A pipeline. Types are checked at every hop by the door, so a mismatch between two
    neighbours fails with both names and the field."""

    def __init__(
        self,
        name: str,
        steps: Sequence[Any],
        *,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        budget: Budget | None = None,
    ) -> None:
        steps = list(steps)
        if not steps:
            raise UsageError(f"Sequential {name!r} needs at least one step")
        for i, step in enumerate(steps):
            if not hasattr(step, "name") or not hasattr(step, "run"):
                raise UsageError(f"Sequential {name!r}: step {i} ({step!r}) is not an agent")
        self.steps = tuple(steps)
        self._setup(
            name,
            input_type=getattr(steps[0], "input_type", Any),
            output_type=getattr(steps[-1], "output_type", Any),
            retry=retry,
            timeout=timeout,
            description=description,
            budget=budget,
        )
        # The first step checks the input itself when called; checking here too would
        # validate the same value twice.
        self.check_input = None
        self.check_output = None

    async def run(self, input: Any, ctx: RunContext) -> Any:
        value = input
        sender = None
        for step in self.steps:
            value = await ctx.call(step, value, sender=sender)
            sender = step.name
        return value


# YAML: `kind: sequential` ---------------------------------------------------------------------
class SequentialSpec(NodeFields):
    kind: Literal["sequential"]
    steps: list[NodeSpec] = Field(min_length=1)


def _build(b: Builder, spec: SequentialSpec, loc: Loc) -> Sequential | None:
    steps = b.nodes(spec.steps, (*loc, "steps"))
    if steps is None:
        return None
    return b.construct(loc, lambda: Sequential(spec.name, steps, **b.common(spec)))


def _draw(d: Canvas, agent: Sequential, me: str) -> None:
    for a, b in pairwise(d.draw_all(agent.steps, me)):
        d.edge(a, b)


register(SequentialSpec, _build, draws=Sequential, draw=_draw)
