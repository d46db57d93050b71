"""The bodies the HTTP API takes and gives, as pydantic models: they make its OpenAPI
document, and FastAPI refuses a body that does not fit them with a 422 naming the field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    """What went wrong with a request, and how to fix it."""

    detail: Any
    steps: list[str] | None = Field(
        default=None, description="The run's step keys (a fork at a step it does not have)."
    )


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str = Field(
        min_length=1,
        max_length=4096,
        description="module:object, path/file.py:object or a YAML workflow file; loaded only "
        "if this server trusts it (as a resume would)",
    )
    input: Any = Field(default=None, description="The run's input (JSON).")
    run_id: str | None = Field(default=None, description="Id for the new run (default: random).")
    budget: dict[str, float] | None = Field(
        default=None, description="Limits on spend, e.g. {'usd': 0.5, 'tokens': 20000}."
    )


class Started(BaseModel):
    run_id: str
    status: str
    agent: str


class UsageOut(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    usd: float = 0.0


class RunSummary(BaseModel):
    run_id: str
    agent: str
    status: str
    error: str | None = None
    target: str | None = None
    created_at: float
    updated_at: float
    usage: UsageOut


class RunPage(BaseModel):
    runs: list[RunSummary]
    next_offset: int | None = Field(
        default=None, description="Pass as `offset` for the next page; null on the last."
    )


class StepOut(BaseModel):
    key: str
    agent: str
    kind: str
    status: str
    attempt: int
    output: Any = None
    error: str | None = None
    started_at: float
    ended_at: float | None = None
    usage: UsageOut | None = None


class RunDetail(RunSummary):
    input: Any = None
    output: Any = None
    steps: list[StepOut]
    forked_from: str | None = Field(default=None, description="The run this one forked.")
    forked_at: str | None = Field(default=None, description="The step it forked at.")


class TraceNodeOut(BaseModel):
    """One step as a node of the run's tree (what `podium trace` shows)."""

    key: str
    agent: str
    kind: str
    status: str
    attempts: int
    duration: float | None = None
    usage: UsageOut
    total_usage: UsageOut
    error: str | None = None
    retries: list[str]
    notes: list[dict[str, Any]]
    replayed: bool
    cached: bool
    saved_usd: float
    children: list[TraceNodeOut]


class RunTrace(BaseModel):
    run: RunSummary
    steps: list[TraceNodeOut]


class GraphNode(BaseModel):
    id: str = Field(description="The node's id in the Mermaid text.")
    label: str
    shape: str = Field(description="box, circle, diamond, stadium; group for a subgraph.")
    parent: str | None = Field(default=None, description="The subgraph it is drawn in.")


class GraphEdge(BaseModel):
    source: str
    target: str
    label: str | None = None
    dotted: bool = False


class Graph(BaseModel):
    run_id: str
    agent: str
    mermaid: str = Field(description="The workflow's topology as a Mermaid flowchart.")
    nodes: list[GraphNode] = Field(description="The same drawing's nodes, as data.")
    edges: list[GraphEdge] = Field(description="The same drawing's edges, as data.")


class Replayed(BaseModel):
    """The verdict of a replay (the determinism check): ok, or the step that differs."""

    run_id: str
    ok: bool
    step: str | None = Field(default=None, description="Where the code now decides otherwise.")
    problem: str | None = Field(default=None, description="What differs there.")
    message: str
    checked: int = Field(description="Journal rows the replay matched.")
    rerun: list[str] = Field(description="Steps whose agents' code ran again.")


class ForkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: str = Field(
        min_length=1,
        max_length=4096,
        description="The step key to run again from; the completed steps before it are reused.",
    )
    input: Any = Field(
        default=None, description="Replaces the run's input (JSON); left out: the same input."
    )


class Forked(BaseModel):
    """A fork queued: the new run goes on in a worker; follow its events."""

    run_id: str
    status: str
    agent: str
    forked_from: str
    at: str


class Accepted(BaseModel):
    """A request taken: the run goes on in the server; follow its events."""

    run_id: str
    status: str
    message: str


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=10_000)
    edited: Any = Field(default=None, description="Replaces the proposed value.")
    step: str | None = Field(default=None, description="The waiting step, if several wait.")
    ttl: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Seconds a tool-call approval lasts."
    )


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(min_length=1, max_length=10_000, description="Why: kept with the run.")
    step: str | None = None


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Any = Field(description="The answer (JSON).")
    step: str | None = None


class WaitingOut(BaseModel):
    run_id: str
    step: str
    agent: str
    reason: str
    request: Any = None
    since: float
    deadline_at: float | None = None
    overdue: bool


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str
    agent: str
    error: str | None = None
    kind: str = "error"
    at: float = 0.0
    saga: Any = None


class Done(BaseModel):
    run_id: str
    message: str


class Health(BaseModel):
    status: str
