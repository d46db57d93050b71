"""`Parallel`: fan out one input to several agents at once, then merge.

Merge strategies: `"collect"` (a dict by branch name), `"vote"` (the most common answer),
a reducer function `(results: dict) -> value`, or a synthesis agent that receives the
`ParallelResult` and writes the final answer. With `min_success` below the number of branches
the run goes on with what succeeded, and the gaps are named in the result. A branch stopped
by a budget is a gap like any other; when too few branches are left, the budget's
`BudgetExceededError` is what the `Parallel` fails with.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_serializer, model_validator

from podium.agents.base import AgentBase, is_agent
from podium.agents.kinds import Builder, Canvas, Loc, NodeFields, label_of, register
from podium.core.bounds import POSITIVE, SECONDS
from podium.core.serde import dumps
from podium.errors import (
    BudgetExceededError,
    QuorumNotMetError,
    StepError,
    Suspended,
    UsageError,
    renamed,
)
from podium.patterns._common import shared_type

if TYPE_CHECKING:
    from podium.agents.kinds import NodeSpec
    from podium.runtime.budget import Budget
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry


class Merge(StrEnum):
    """How a `Parallel` merges its branches' outputs, when no function or agent does."""

    COLLECT = "collect"  # a dict by branch name
    VOTE = "vote"  # the most common answer


MergeOption = Merge | str | Callable[[dict[str, Any]], Any] | Any


class ParallelResult(BaseModel):
    """The merged `value`, every branch's output in `results`, and why any branch is missing
    in `gaps` (branch name to reason).

    With `merge="collect"` the value is the results, so a Parallel inside a Parallel would
    hold the inner one twice, and a tower of them would double in size at each level. So when
    a branch's output is itself a `ParallelResult`, JSON (and `repr`) leave `results` out if
    it equals `value`, and reading such JSON back restores it.
    """

    value: Any = None
    results: dict[str, Any] = Field(default_factory=dict)
    gaps: dict[str, str] = Field(default_factory=dict)
    votes: dict[str, int] | None = None

    @property
    def complete(self) -> bool:
        return not self.gaps

    def _repeats(self) -> bool:
        nested = any(isinstance(v, ParallelResult) for v in self.results.values())
        # `value` is a copy of `results`: the same objects, so `==` compares identities
        return nested and isinstance(self.value, dict) and self.value == self.results

    @model_serializer
    def _without_repeats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value}
        if not self._repeats():
            out["results"] = self.results
        return {**out, "gaps": self.gaps, "votes": self.votes}

    @model_validator(mode="before")
    @classmethod
    def _restore_repeats(cls, data: Any) -> Any:
        if isinstance(data, dict) and "results" not in data and isinstance(data.get("value"), dict):
            return {**data, "results": data["value"]}
        return data

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        repeats = self._repeats()
        return ((k, v) for k, v in super().__repr_args__() if not (repeats and k == "results"))


class Parallel(AgentBase[Any, ParallelResult]):
    def __init__(
        self,
        name: str,
        branches: Sequence[Any],
        *,
        merge: MergeOption = Merge.COLLECT,
        min_success: int | None = None,
        branch_timeout: float | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        budget: Budget | None = None,
    ) -> None:
        branches = list(branches)
        if not branches:
            raise UsageError(f"Parallel {name!r} needs at least one branch")
        for i, b in enumerate(branches):
            if not hasattr(b, "name") or not hasattr(b, "run"):
                raise UsageError(f"Parallel {name!r}: branch {i} ({b!r}) is not an agent")
        n = len(branches)
        if min_success is not None and not (POSITIVE.ok(min_success) and min_success <= n):
            raise UsageError(f"Parallel {name!r}: min_success must be between 1 and {n}")
        SECONDS.check_optional(f"Parallel {name!r}", "branch_timeout", branch_timeout)
        if isinstance(merge, str):
            if merge not in set(Merge):
                raise UsageError(
                    f"Parallel {name!r}: merge {merge!r} is not 'collect', 'vote', a function "
                    "or an agent"
                )
            merge = Merge(merge)
        self.branches = tuple(branches)
        self.labels = _labels(branches)
        self.merge = merge
        self.min_success = n if min_success is None else min_success
        self.branch_timeout = branch_timeout
        self._setup(
            name,
            input_type=shared_type(branches, "input_type"),
            output_type=ParallelResult,
            retry=retry,
            timeout=timeout,
            description=description,
            budget=budget,
        )
        self.check_input = None  # every branch checks the input itself when called

    async def run(self, input: Any, ctx: RunContext) -> ParallelResult:
        outcomes = await asyncio.gather(
            *(self._branch(b, input, ctx) for b in self.branches), return_exceptions=True
        )
        results: dict[str, Any] = {}
        gaps: dict[str, str] = {}
        spent: BudgetExceededError | None = None
        for label, outcome in zip(self.labels, outcomes, strict=True):
            if isinstance(outcome, Suspended | asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, BaseException):
                gaps[label] = _reason(outcome)
                ctx.emit("parallel.gap", branch=label, reason=gaps[label])
                if spent is None and isinstance(outcome, BudgetExceededError):
                    spent = outcome
            else:
                results[label] = outcome
        if len(results) < self.min_success:
            if spent is not None:
                raise spent
            detail = "; ".join(f"{k}: {v}" for k, v in gaps.items())
            raise QuorumNotMetError(
                f"Parallel {self.name!r}: {len(results)} of {len(self.branches)} branches "
                f"succeeded, {self.min_success} needed ({detail})"
            )
        return await self._merge(ParallelResult(results=results, gaps=gaps), ctx)

    async def _branch(self, branch: Any, input: Any, ctx: RunContext) -> Any:
        if self.branch_timeout is None:
            return await ctx.call(branch, input)
        try:
            async with asyncio.timeout(self.branch_timeout):
                return await ctx.call(branch, input)
        except TimeoutError:
            raise TimeoutError(f"no result within {self.branch_timeout:g}s") from None

    async def _merge(self, result: ParallelResult, ctx: RunContext) -> ParallelResult:
        merge = self.merge
        if merge == "collect":
            result.value = dict(result.results)
        elif merge == "vote":
            result.value, result.votes = _vote(result.results)
            ctx.emit("parallel.vote", votes=result.votes)
        elif hasattr(merge, "name") and hasattr(merge, "run"):
            result.value = await ctx.call(merge, result)
        elif callable(merge):
            result.value = merge(dict(result.results))
        return result


def _labels(branches: Sequence[Any]) -> tuple[str, ...]:
    """Branch names, made unique (`critic`, `critic#1`) when one agent appears twice."""
    seen: Counter[str] = Counter()
    labels = []
    for b in branches:
        n = seen[b.name]
        labels.append(b.name if n == 0 else f"{b.name}#{n}")
        seen[b.name] += 1
    return tuple(labels)


def _vote(results: dict[str, Any]) -> tuple[Any, dict[str, int]]:
    """The most common output (ties go to the earliest branch) and the count per answer."""
    counts: Counter[str] = Counter()
    first: dict[str, Any] = {}
    for output in results.values():
        key = output if isinstance(output, str) else dumps(output)
        counts[key] += 1
        first.setdefault(key, output)
    if not counts:
        return None, {}
    best = max(counts, key=lambda k: counts[k])  # max keeps the first of equal counts
    return first[best], dict(counts)


def _reason(error: BaseException) -> str:
    if isinstance(error, StepError):
        error = error.cause
    return f"{type(error).__name__}: {error}"


# YAML: `kind: parallel` -----------------------------------------------------------------------
class ParallelSpec(NodeFields):
    kind: Literal["parallel"]
    branches: list[NodeSpec] = Field(min_length=1)
    merge: str = Field(
        Merge.COLLECT,
        min_length=1,
        description="collect | vote | python:module:function (a reducer) or python:module:agent",
    )
    min_success: int | None = POSITIVE.field(None)
    branch_timeout: float | None = SECONDS.field(None)

    @field_validator("merge")
    @classmethod
    def _known_merge(cls, value: str) -> str:
        if value in set(Merge) or value.startswith("python:"):
            return value
        raise ValueError(f"merge {value!r} is not collect, vote or python:module:function")


def _build(b: Builder, spec: ParallelSpec, loc: Loc) -> Parallel | None:
    branches = b.nodes(spec.branches, (*loc, "branches"))
    merge: Any = spec.merge
    if merge.startswith("python:"):
        merge = b.import_object(merge.removeprefix("python:"), (*loc, "merge"))
        if merge is not None and not callable(merge) and not is_agent(merge):
            b.problem((*loc, "merge"), f"{spec.merge!r} is neither a function nor an agent")
            merge = None
    if branches is None or merge is None:
        return None
    return b.construct(
        loc,
        lambda: Parallel(
            spec.name,
            branches,
            merge=merge,
            min_success=spec.min_success,
            branch_timeout=spec.branch_timeout,
            **b.common(spec),
        ),
    )


def _draw(d: Canvas, agent: Parallel, me: str) -> None:
    fan = d.box(me, "fan_out", "fan out", "(())")
    merge = agent.merge
    name = merge if isinstance(merge, str) else getattr(merge, "name", None) or label_of(merge)
    join = d.box(me, "merge", f"merge: {name}", "(())")
    for branch in d.draw_all(agent.branches, me):
        d.edge(fan, branch)
        d.edge(branch, join)


register(ParallelSpec, _build, draws=Parallel, draw=_draw)


__getattr__ = renamed(__name__, ["QuorumNotMet"])
