"""The records a run leaves behind: the run itself, its journal of steps, its events, its usage.

These are plain slotted dataclasses because the door creates a few per hop; stores turn them
into rows and back. Outputs are kept as Python objects here; a store that persists them turns
them into JSON, and the journal turns that JSON back into the declared type on replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class CallKind(StrEnum):
    """What one hop through the door calls (`Call.kind`), stored as its step's `kind`."""

    AGENT = "agent"
    TOOL = "tool"
    MODEL = "model"
    HUMAN = "human"  # a person asked on a saga's behalf (an effect whose outcome is unknown)
    COMPENSATION = "compensation"  # a saga undoing an effect


class StepStatus(StrEnum):
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens and requests spent; adds up with `+`.

    `input_tokens` counts every token the model read, cached or not, so totals compare across
    providers. `cache_read_tokens` and `cache_write_tokens` say how many of those input tokens
    were read from, or written to, a provider's prompt cache (Anthropic's
    `cache_read_input_tokens` / `cache_creation_input_tokens`): a part of `input_tokens`, not
    an addition to it.

    `usd` is what those tokens cost at the runtime's prices (`podium.models.prices`), set when
    a model step is priced; 0 for a model nobody priced (local, scripted). The cache fields and
    `usd` are left out of `to_dict` while zero, so rows written before they existed and rows
    written without them look the same.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.requests + other.requests,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.usd + other.usd,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, int | float]:
        data: dict[str, int | float] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "requests": self.requests,
        }
        if self.cache_read_tokens:
            data["cache_read_tokens"] = self.cache_read_tokens
        if self.cache_write_tokens:
            data["cache_write_tokens"] = self.cache_write_tokens
        if self.usd:
            data["usd"] = round(self.usd, 10)  # no float noise from summing in the rows
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        if not data:
            return ZERO_USAGE
        return cls(
            int(data.get("input_tokens", 0)),
            int(data.get("output_tokens", 0)),
            int(data.get("requests", 0)),
            int(data.get("cache_read_tokens", 0)),
            int(data.get("cache_write_tokens", 0)),
            float(data.get("usd", 0.0)),
        )


ZERO_USAGE = Usage()


@dataclass(slots=True)
class StepRecord:
    """One journal entry: a call through the door, keyed by its deterministic step key."""

    run_id: str
    key: str
    agent: str
    kind: str  # a CallKind: "agent", "tool", "model", ...
    status: StepStatus
    attempt: int = 1
    output: Any = None
    error: str | None = None
    started_at: float = 0.0
    ended_at: float | None = None
    usage: Usage | None = None

    @property
    def parent_key(self) -> str:
        return self.key.rsplit("/", 1)[0]

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(slots=True)
class RunRecord:
    """A run as the store keeps it."""

    run_id: str
    agent: str
    status: RunStatus
    input: Any = None
    output: Any = None
    error: str | None = None
    target: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    usage: Usage = field(default_factory=Usage)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "agent": self.agent,
            "status": str(self.status),
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "target": self.target,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "usage": self.usage.to_dict(),
        }


@dataclass(slots=True)
class Event:
    """Something that happened in a run: a step started, completed, failed, retried, or a
    pattern's own decision (`route.decision`, `parallel.gap`). `data` carries the details."""

    run_id: str
    seq: int
    ts: float
    kind: str
    key: str = ""
    agent: str = ""
    attempt: int = 0
    duration: float | None = None
    usage: Usage | None = None
    data: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "key": self.key,
            "agent": self.agent,
            "attempt": self.attempt,
            "duration": self.duration,
            "usage": None if self.usage is None else self.usage.to_dict(),
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to drive one run, held by one runtime (`owner`, a random id) until `until`.

    `epoch` is the fencing token: it grows every time the lease is claimed, so a holder that
    lost it (it stalled past `until` and another took over) is told apart from the new one by
    the store, which refuses its writes. `holder` says who holds it (host, pid, boot and pid
    namespace), for messages and to take over at once from a holder that is provably gone.
    """

    run_id: str
    owner: str
    epoch: int
    until: float
    holder: dict[str, Any] = field(default_factory=dict)
