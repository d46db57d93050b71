"""The shape of a YAML workflow, as pydantic models.

A node is either a Python reference (`{python: "pkg.mod:obj"}`), an agent kind (`llm`,
`human`, `approval`; `remote` is reserved) or a pattern chosen by its `kind`. Adding a kind
means one model here (with a `kind` literal), one entry in `NODE_KINDS` and in the `NodeSpec`
union, and a builder in the loader; the JSON Schema follows from that.

Functions (conditions, reducers, classifiers, speaker selectors) are import paths written
`python:module:object` (the `python:` prefix may be left out); names that refer to other
agents (routes, edges, handoff routes, critics) are checked by the loader.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

__all__ = [
    "NODE_KINDS",
    "AdaptiveSpec",
    "ApprovalSpec",
    "CacheSpec",
    "EdgeSpec",
    "GraphSpec",
    "GroupChatSpec",
    "HandoffSpec",
    "HumanSpec",
    "LLMSpec",
    "LoopSpec",
    "MagenticSpec",
    "NodeSpec",
    "ParallelSpec",
    "PythonRef",
    "RemoteSpec",
    "RetrySpec",
    "RouterSpec",
    "RuleSpec",
    "SequentialSpec",
    "SupervisorSpec",
    "WORKFLOW",
    "json_schema",
]

REF = "`python:module:object` (or `file.py:object` relative to the spec)"


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a spec should fail loudly, not be ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySpec(_Strict):
    attempts: int = Field(3, ge=1)
    initial_delay: float = Field(0.2, ge=0)
    max_delay: float = Field(10.0, ge=0)
    multiplier: float = Field(2.0, ge=1)
    jitter: bool = True


class PythonRef(_Strict):
    """An agent (or, for `classifier` and `merge`, a function) found by import path:
    `package.module:object` or `file.py:object` relative to the YAML file's folder."""

    kind: Literal["python"] = "python"
    python: str = Field(min_length=1)


class _Node(_Strict):
    """Fields every pattern node has."""

    name: str = Field(min_length=1)
    description: str = ""
    retry: RetrySpec | None = None
    timeout: float | None = Field(None, gt=0)
    tiers: dict[str, str | list[str]] | None = Field(
        None,
        description="at the top of the file only: tier name to a model, or to a model and its "
        "fallbacks, for `llm` nodes that ask for a `tier` (a runtime's tiers win)",
    )


class CacheSpec(_Strict):
    """Cache the model's answers for `ttl` seconds (none: as long as the cache keeps them)."""

    ttl: float | None = Field(None, gt=0)


class SequentialSpec(_Node):
    kind: Literal["sequential"]
    steps: list[NodeSpec] = Field(min_length=1)


class ParallelSpec(_Node):
    kind: Literal["parallel"]
    branches: list[NodeSpec] = Field(min_length=1)
    merge: str = Field(
        "collect",
        min_length=1,
        description="collect | vote | python:module:function (a reducer) or python:module:agent",
    )
    min_success: int | None = Field(None, ge=1)
    branch_timeout: float | None = Field(None, gt=0)

    @field_validator("merge")
    @classmethod
    def _known_merge(cls, value: str) -> str:
        if value in ("collect", "vote") or value.startswith("python:"):
            return value
        raise ValueError(f"merge {value!r} is not collect, vote or python:module:function")


class RuleSpec(_Strict):
    """Route when the input's text holds one of `keywords` and/or `when` (a Python predicate,
    `module:function`) says yes."""

    route: str = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)
    when: str | None = Field(None, min_length=1)
    confidence: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _needs_a_test(self) -> RuleSpec:
        if not self.keywords and self.when is None:
            raise ValueError(f"rule for route {self.route!r} needs `keywords` or `when`")
        return self


class RouterSpec(_Node):
    """Exactly one way to classify: `classifier` (a Python function or agent), `rules`, or
    `model` (an LLM told the routes; `instructions` replace its opening paragraph)."""

    kind: Literal["router"]
    routes: dict[str, NodeSpec] = Field(min_length=1)
    classifier: PythonRef | None = None
    rules: list[RuleSpec] | None = Field(None, min_length=1)
    model: str | None = Field(None, min_length=1)
    instructions: str | None = None
    threshold: float = Field(0.0, ge=0, le=1)
    fallback: NodeSpec | None = None

    @model_validator(mode="after")
    def _one_classifier(self) -> RouterSpec:
        given = [k for k in ("classifier", "rules", "model") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a router needs exactly one of `classifier`, `rules` or `model`"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class LLMSpec(_Node):
    """A model with instructions and tools. Without `model`, `PODIUM_MODEL` decides, else a
    scripted echo model (so a spec runs offline instead of calling a provider by surprise)."""

    kind: Literal["llm"]
    model: str | None = Field(
        None,
        min_length=1,
        description="`scripted`, `openai:<model>` (any OpenAI-compatible), `anthropic:<model>` "
        "or `local:<path.gguf>`",
    )
    instructions: str = ""
    tools: list[PythonRef] = Field(default_factory=list)
    output_type: str | None = Field(
        None, min_length=1, description="`module:Class`: a pydantic model the answer must fit"
    )
    max_turns: int = Field(10, ge=1)
    fallback_models: list[str] = Field(
        default_factory=list, description="models tried in order when `model` fails for good"
    )
    tier: str | None = Field(
        None, min_length=1, description="ask for a tier (`fast`, `smart`) instead of a `model`"
    )
    cache: bool | CacheSpec = Field(
        False, description="reuse the model's answer to the same request (true, or {ttl: s})"
    )
    batchable: bool | int = Field(
        False, description="answer items that arrive together in one model call (true: 8)"
    )


class _Person(_Strict):
    """Fields a person's step has. No `retry`/`timeout`: a person is waited for, with a
    `deadline` and what happens when it passes (`on_timeout`)."""

    name: str = Field(min_length=1)
    description: str = ""
    assignee: str | None = Field(None, min_length=1, description="who is asked (shown in inbox)")
    deadline: float | None = Field(None, gt=0, description="seconds a person has to answer")
    on_timeout: Literal["reject", "approve", "escalate"] = "reject"
    escalate_to: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _escalation(self) -> _Person:
        if self.on_timeout == "escalate" and (self.escalate_to is None or self.deadline is None):
            raise ValueError("on_timeout: escalate needs `escalate_to` and `deadline`")
        return self


class HumanSpec(_Person):
    """A person answers `question` about the input (`HumanAgent`); the run waits meanwhile."""

    kind: Literal["human"]
    question: str = Field(min_length=1)
    answer_type: str | None = Field(
        None, min_length=1, description=REF + " (a type the answer must fit; default: text)"
    )


class ApprovalSpec(_Person):
    """A person approves, edits or rejects the input (`HumanApproval`); rejection stops the
    flow with the reason recorded."""

    kind: Literal["approval"]
    prompt: str = ""
    input_type: str | None = Field(None, min_length=1, description=REF + " (the proposed value)")


class RemoteSpec(_Strict):
    """An agent in another process spoken to over A2A. Reserved: not supported yet."""

    kind: Literal["remote"]
    name: str = Field(min_length=1)
    description: str = ""
    url: str | None = None


class SupervisorSpec(_Node):
    """Named workers, and either `planner` (with optional `reviewer` and `synthesizer`)
    agents, or a `model` that plays all three (`review` says whether it reviews)."""

    kind: Literal["supervisor"]
    workers: list[NodeSpec] = Field(min_length=1)
    planner: NodeSpec | None = None
    reviewer: NodeSpec | None = None
    synthesizer: NodeSpec | None = None
    model: str | None = Field(None, min_length=1)
    instructions: str | None = None
    review: bool = True
    max_rounds: int = Field(10, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    worker_timeout: float | None = Field(None, gt=0, description="seconds, for every worker")
    worker_timeouts: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="seconds per worker name (overrides worker_timeout)"
    )
    worker_errors: Literal["fail", "gap"] = "fail"
    max_plan_errors: int = Field(2, ge=0)

    @model_validator(mode="after")
    def _one_manager(self) -> SupervisorSpec:
        _one_of(self, ("planner", "model"), "a supervisor", ("reviewer", "synthesizer"))
        return self


class MagenticSpec(_Node):
    """Participants, and either the three manager agents (`ledger`, `progress`, optional
    `answer`) or a `model` that plays them."""

    kind: Literal["magentic"]
    participants: list[NodeSpec] = Field(min_length=1)
    ledger: NodeSpec | None = None
    progress: NodeSpec | None = None
    answer: NodeSpec | None = None
    model: str | None = Field(None, min_length=1)
    instructions: str | None = None
    max_rounds: int = Field(20, ge=1)
    max_stalls: int = Field(3, ge=1)
    max_replans: int = Field(3, ge=0)
    max_tokens: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_manager(self) -> MagenticSpec:
        _one_of(self, ("ledger", "model"), "a magentic team", ("progress", "answer"))
        if self.ledger is not None and self.progress is None:
            raise ValueError("`ledger` needs `progress` too (or give `model` instead)")
        return self


class GroupChatSpec(_Node):
    """A shared conversation. `speaker` is `round_robin` or `python:module:object` (a
    function `(transcript, names) -> name` or an agent); `manager` is an inline agent that
    picks. `rounds` with a `critic` makes it a critic-reviewer debate."""

    kind: Literal["groupchat"]
    participants: list[NodeSpec] = Field(min_length=1)
    speaker: str = Field("round_robin", min_length=1, description="round_robin or " + REF)
    manager: NodeSpec | None = None
    max_turns: int | None = Field(None, ge=1, description="default 12 (a debate: from rounds)")
    rounds: int | None = Field(None, ge=1, description="debate rounds (needs `critic`)")
    until: str | None = Field(None, min_length=1, description=REF + ": transcript -> bool")
    consensus: Literal["majority", "weighted", "unanimous"] | None = None
    weights: dict[str, float] | None = None
    threshold: float | None = Field(None, gt=0, le=1)
    options: list[str] | None = None
    critic: str | None = Field(None, min_length=1, description="the name of a participant")
    approve: list[str] = Field(default_factory=lambda: ["approve", "approved"])
    deadlock_turns: int | None = Field(None, ge=1)
    on_deadlock: Literal["escalate", "stop"] = "escalate"
    fallback: NodeSpec | None = None
    manager_retries: int = Field(2, ge=0)

    @model_validator(mode="after")
    def _checks(self) -> GroupChatSpec:
        if self.manager is not None and self.speaker != "round_robin":
            raise ValueError("give `speaker` or `manager`, not both")
        if self.rounds is not None and self.critic is None:
            raise ValueError("`rounds` makes a debate, which needs a `critic`")
        if self.rounds is not None and self.max_turns is not None:
            raise ValueError("give `rounds` (a debate) or `max_turns`, not both")
        return self


class HandoffSpec(_Node):
    """Agents that pass the work along. `start` and the names in `routes` are agent names;
    without `routes` every agent may hand off to every other."""

    kind: Literal["handoff"]
    agents: list[NodeSpec] = Field(min_length=1)
    start: str | None = Field(None, min_length=1)
    routes: dict[str, list[str]] | None = None
    max_handoffs: int = Field(10, ge=0)
    ping_pong: int = Field(2, ge=1)


class LoopSpec(_Node):
    """`body` runs until `until` (`python:module:object`, a function or an agent) or an
    inline `critic` agent says done, or `max_iterations`."""

    kind: Literal["loop"]
    body: NodeSpec
    until: str | None = Field(None, min_length=1, description=REF + ": value -> bool, or agent")
    critic: NodeSpec | None = None
    max_iterations: int = Field(10, ge=1)
    no_progress: int | None = Field(1, ge=1, description="null turns the detector off")
    state: bool = False
    check_first: bool = False

    @model_validator(mode="after")
    def _one_condition(self) -> LoopSpec:
        if self.until is not None and self.critic is not None:
            raise ValueError("give `until` or `critic`, not both")
        if self.check_first and self.until is None and self.critic is None:
            raise ValueError("`check_first` needs `until` or `critic`")
        return self


class EdgeSpec(_Strict):
    """From one node id to another (or `END`), when `when` (`python:module:function` of the
    source's output) says so; without `when` the edge always matches."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: str = Field(alias="from", min_length=1)
    target: str = Field(alias="to", min_length=1)
    when: str | None = Field(None, min_length=1, description=REF)


class GraphSpec(_Node):
    """Nodes by id, edges in order (the first matching edge is taken), a `start` id."""

    kind: Literal["graph"]
    nodes: dict[str, NodeSpec] = Field(min_length=1)
    edges: list[EdgeSpec] = Field(min_length=1)
    start: str = Field(min_length=1)
    max_steps: int = Field(50, ge=1)


class AdaptiveSpec(_Node):
    """Strategies by name, picked per task by `classifier` (python), `rules` (whose `route`
    is a strategy), or `model`, and/or learnt from outcomes (`learning`)."""

    kind: Literal["adaptive"]
    strategies: dict[str, NodeSpec] = Field(min_length=1)
    classifier: PythonRef | None = None
    rules: list[RuleSpec] | None = Field(None, min_length=1)
    model: str | None = Field(None, min_length=1)
    kinds: list[str] = Field(default_factory=list, description="task kinds told to the model")
    instructions: str | None = None
    learning: bool = False
    default: str | None = Field(None, min_length=1)
    success: str | None = Field(None, min_length=1, description=REF + ": output -> bool, or agent")
    outcomes: str | None = Field(None, min_length=1, description=REF + ": an OutcomeStore")
    namespace: str | None = Field(None, min_length=1)
    cost_weight: float = Field(0.01, ge=0)
    latency_weight: float = Field(0.01, ge=0)
    prior: float = Field(1.0, ge=0)
    seed: int | None = None

    @model_validator(mode="after")
    def _classified(self) -> AdaptiveSpec:
        given = [k for k in ("classifier", "rules", "model") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(
                f"an adaptive takes at most one of `classifier`, `rules` or `model` (got "
                f"{', '.join(given)})"
            )
        if not given and not self.learning:
            raise ValueError("an adaptive needs `classifier`, `rules`, `model`, or `learning`")
        return self


def _one_of(spec: BaseModel, keys: tuple[str, str], what: str, extras: tuple[str, ...]) -> None:
    """Exactly one of two ways to give a manager; the agent way's helpers need the agent."""
    given = [k for k in keys if getattr(spec, k) is not None]
    if len(given) != 1:
        raise ValueError(
            f"{what} needs exactly one of `{keys[0]}` or `{keys[1]}`"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if given[0] == keys[1]:
        extra = [k for k in extras if getattr(spec, k) is not None]
        if extra:
            raise ValueError(f"with `{keys[1]}`, drop {', '.join(extra)} (the model plays them)")


# kind -> model. The loader pairs each with a builder.
NODE_KINDS: dict[str, type[_Strict]] = {
    "python": PythonRef,
    "llm": LLMSpec,
    "human": HumanSpec,
    "approval": ApprovalSpec,
    "remote": RemoteSpec,
    "sequential": SequentialSpec,
    "parallel": ParallelSpec,
    "router": RouterSpec,
    "supervisor": SupervisorSpec,
    "magentic": MagenticSpec,
    "groupchat": GroupChatSpec,
    "handoff": HandoffSpec,
    "loop": LoopSpec,
    "graph": GraphSpec,
    "adaptive": AdaptiveSpec,
}


def _node_kind(value: Any) -> str | None:
    """A node without `kind` is a Python reference; otherwise its kind picks the model."""
    if isinstance(value, dict):
        kind = value.get("kind", "python")
        return kind if isinstance(kind, str) and kind in NODE_KINDS else None
    if isinstance(value, BaseModel):
        return getattr(value, "kind", None)
    return None


NodeSpec = Annotated[
    Annotated[PythonRef, Tag("python")]
    | Annotated[LLMSpec, Tag("llm")]
    | Annotated[HumanSpec, Tag("human")]
    | Annotated[ApprovalSpec, Tag("approval")]
    | Annotated[RemoteSpec, Tag("remote")]
    | Annotated[SequentialSpec, Tag("sequential")]
    | Annotated[ParallelSpec, Tag("parallel")]
    | Annotated[RouterSpec, Tag("router")]
    | Annotated[SupervisorSpec, Tag("supervisor")]
    | Annotated[MagenticSpec, Tag("magentic")]
    | Annotated[GroupChatSpec, Tag("groupchat")]
    | Annotated[HandoffSpec, Tag("handoff")]
    | Annotated[LoopSpec, Tag("loop")]
    | Annotated[GraphSpec, Tag("graph")]
    | Annotated[AdaptiveSpec, Tag("adaptive")],
    Discriminator(
        _node_kind,
        custom_error_type="unknown_kind",
        custom_error_message="unknown kind (expected one of: " + ", ".join(NODE_KINDS) + ")",
    ),
]

for _model in NODE_KINDS.values():
    _model.model_rebuild()

# The whole file is one node (usually a pattern; its name is the run's agent).
WORKFLOW: TypeAdapter[Any] = TypeAdapter(NodeSpec)


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of a workflow file (`podium schema`), with a title and the
    draft it follows, so editors can validate YAML against it."""
    schema: dict[str, Any] = WORKFLOW.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "podium workflow",
        "description": "A podium YAML workflow: one node, usually a pattern made of nodes.",
        **schema,
    }
