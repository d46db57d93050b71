"""What a run cost: by agent, by model and by step, from its journal.

`cost_report(run, steps, events)` adds up the usage of every model and tool step (each row
carries its tokens and dollars, failed attempts included, priced when the run ran); a model
step is charged to the agent that made it (the nearest agent step above it) and to the model
its `step.started` event names. Steps answered from the cache cost nothing; their
`cache.hit` events say what they saved, added up in `saved_usd` and `saved_tokens`.
`Runtime.cost(run_id)` and `podium cost RUN` build it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.core.records import ZERO_USAGE, Event, RunRecord, StepRecord, Usage

__all__ = ["CostLine", "CostReport", "cost_report"]

_UNKNOWN = "?"


@dataclass(slots=True)
class CostLine:
    """Spend of one agent, one model, or one step."""

    name: str
    usage: Usage = ZERO_USAGE
    model_calls: int = 0
    tool_calls: int = 0
    agent: str = ""  # a step's: the agent that made it
    model: str = ""  # a step's: the model it asked
    status: str = ""  # a step's
    kind: str = ""  # a step's: model or tool
    cached: bool = False  # a step's: answered from the cache

    @property
    def usd(self) -> float:
        return self.usage.usd

    @property
    def tokens(self) -> int:
        return self.usage.total_tokens

    def to_dict(self) -> dict[str, Any]:
        u = self.usage
        data: dict[str, Any] = {
            "usd": round(u.usd, 10),
            "tokens": u.total_tokens,
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "cache_read_tokens": u.cache_read_tokens,
            "cache_write_tokens": u.cache_write_tokens,
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
        }
        if self.kind:  # a step
            return {
                "key": self.name,
                "kind": self.kind,
                "agent": self.agent,
                "model": self.model or None,
                "status": self.status,
                "cached": self.cached,
                **data,
            }
        return {"name": self.name, **data}


@dataclass(slots=True)
class CostReport:
    """A run's spend: totals, and the same split by agent, by model and by step."""

    run_id: str
    agent: str
    status: str
    total: CostLine
    by_agent: list[CostLine] = field(default_factory=list)
    by_model: list[CostLine] = field(default_factory=list)
    steps: list[CostLine] = field(default_factory=list)
    budget: dict[str, float] | None = None  # the run's own budget, as stored with it
    alerts: list[dict[str, Any]] = field(default_factory=list)  # budget.alert / .exceeded
    cache_hits: int = 0  # steps answered from the cache
    saved_usd: float = 0.0  # what those answers would have cost
    saved_tokens: int = 0

    @property
    def usd(self) -> float:
        return self.total.usd

    @property
    def tokens(self) -> int:
        return self.total.tokens

    def to_dict(self) -> dict[str, Any]:
        totals = self.total.to_dict()
        del totals["name"]
        return {
            "run_id": self.run_id,
            "agent": self.agent,
            "status": self.status,
            **totals,
            "cache_hits": self.cache_hits,
            "saved_usd": round(self.saved_usd, 10),
            "saved_tokens": self.saved_tokens,
            "by_agent": [line.to_dict() for line in self.by_agent],
            "by_model": [line.to_dict() for line in self.by_model],
            "steps": [line.to_dict() for line in self.steps],
            "budget": self.budget,
            "alerts": self.alerts,
        }


def cost_report(
    run: RunRecord,
    steps: Sequence[StepRecord],
    events: Sequence[Event] = (),
    budget: dict[str, float] | None = None,
) -> CostReport:
    """The run's spend from its journal rows (and events: which model each step asked)."""
    rows = {s.key: s for s in steps}
    models = _models(events)
    hits = _hits(events)
    total = CostLine("total")
    agents: dict[str, CostLine] = {}
    by_model: dict[str, CostLine] = {}
    lines: list[CostLine] = []
    for step in steps:
        if step.kind not in ("model", "tool") and step.usage is None:
            continue
        line = _step_line(step, _owner(step.key, rows), models.get(step.key, ""))
        line.cached = step.key in hits
        lines.append(line)
        _add(total, line)
        _add(agents.setdefault(line.agent, CostLine(line.agent)), line)
        if step.kind == "model":
            name = line.model or _UNKNOWN
            _add(by_model.setdefault(name, CostLine(name)), line)
    alerts = [
        {"kind": e.kind, "key": e.key, **(e.data or {})}
        for e in events
        if e.kind in ("budget.alert", "budget.exceeded")
    ]
    return CostReport(
        run.run_id,
        run.agent,
        str(run.status),
        total,
        sorted(agents.values(), key=_costliest),
        sorted(by_model.values(), key=_costliest),
        lines,
        budget,
        alerts,
        len(hits),
        sum(float(d.get("saved_usd", 0.0)) for d in hits.values()),
        sum(int(d.get("saved_tokens", 0)) for d in hits.values()),
    )


def _step_line(step: StepRecord, agent: str, model: str) -> CostLine:
    attempts = step.attempt
    return CostLine(
        step.key,
        step.usage or ZERO_USAGE,
        model_calls=attempts if step.kind == "model" else 0,
        tool_calls=attempts if step.kind == "tool" else 0,
        agent=agent,
        model=model,
        status=str(step.status),
        kind=step.kind,
    )


def _add(into: CostLine, line: CostLine) -> None:
    into.usage = into.usage + line.usage
    into.model_calls += line.model_calls
    into.tool_calls += line.tool_calls


def _costliest(line: CostLine) -> tuple[float, int, str]:
    return (-line.usd, -line.tokens, line.name)


def _owner(key: str, rows: dict[str, StepRecord]) -> str:
    """The agent a step belongs to: the nearest step above it that is an agent."""
    while "/" in key:
        key = key.rsplit("/", 1)[0]
        row = rows.get(key)
        if row is not None and row.kind == "agent":
            return row.agent
    return _UNKNOWN


def _hits(events: Sequence[Event]) -> dict[str, dict[str, Any]]:
    """The steps answered from the cache, with what each saved."""
    return {e.key: e.data or {} for e in events if e.kind == "cache.hit"}


def _models(events: Sequence[Event]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in events:
        if e.kind == "step.started" and e.data and "model" in e.data:
            out[e.key] = str(e.data["model"])
    return out
