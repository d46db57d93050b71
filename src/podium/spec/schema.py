"""The shape of a YAML workflow, as pydantic models.

A node is either a Python reference (`{python: "pkg.mod:obj"}`) or a pattern chosen by its
`kind`. Adding a kind means one model here (with a `kind` literal and a `build` method in the
loader) and one entry in `NODE_KINDS`; the union below and the JSON Schema follow from that.
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
    "LLMSpec",
    "NodeSpec",
    "ParallelSpec",
    "PythonRef",
    "RetrySpec",
    "RouterSpec",
    "RuleSpec",
    "SequentialSpec",
    "WORKFLOW",
]


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
        None, min_length=1, description="`scripted` or `openai:<model>` (any OpenAI-compatible)"
    )
    instructions: str = ""
    tools: list[PythonRef] = Field(default_factory=list)
    output_type: str | None = Field(
        None, min_length=1, description="`module:Class`: a pydantic model the answer must fit"
    )
    max_turns: int = Field(10, ge=1)


# kind -> model. The loader pairs each with a builder.
NODE_KINDS: dict[str, type[_Strict]] = {
    "python": PythonRef,
    "sequential": SequentialSpec,
    "parallel": ParallelSpec,
    "router": RouterSpec,
    "llm": LLMSpec,
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
    | Annotated[SequentialSpec, Tag("sequential")]
    | Annotated[ParallelSpec, Tag("parallel")]
    | Annotated[RouterSpec, Tag("router")]
    | Annotated[LLMSpec, Tag("llm")],
    Discriminator(
        _node_kind,
        custom_error_type="unknown_kind",
        custom_error_message="unknown kind (expected one of: " + ", ".join(NODE_KINDS) + ")",
    ),
]


for _model in (SequentialSpec, ParallelSpec, RouterSpec, LLMSpec):
    _model.model_rebuild()

# The whole file is one node (usually a pattern; its name is the run's agent).
WORKFLOW: TypeAdapter[Any] = TypeAdapter(NodeSpec)
