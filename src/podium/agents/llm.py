"""`LLMAgent`: a model with instructions and tools, looping until it answers.

    triage = LLMAgent(
        "triage",
        model="openai:gpt-4o-mini",
        instructions="Decide whether the order can be refunded.",
        tools=[lookup_order, refund],
        output_type=Decision,
    )

Every model call is its own step through the door (`<agent key>/model#n`), so it is
journaled, retried and timed like any other hop; on resume a model's earlier answers are
replayed from the journal, not asked again, and the loop takes the same path. A malformed
answer (structured output that does not fit `output_type`, a tool that does not exist, tool
arguments that do not validate) fails the model step with `ModelResponseError`, which the
door retries: asking again usually gives a well-formed answer.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from podium.agents.base import AgentBase
from podium.errors import MaxTurnsExceeded, ModelResponseError, UsageError
from podium.models.base import (
    Message,
    Model,
    ModelResponse,
    ModelSettings,
    OutputSchema,
    ToolSpec,
)
from podium.models.settings import parse_model_spec, resolve_model
from podium.runtime.serde import describe_validation_error, dumps
from podium.tools.tool import Tool

if TYPE_CHECKING:
    from podium.runtime.breaker import Breaker
    from podium.runtime.context import RunContext
    from podium.runtime.door import Call
    from podium.runtime.policies import Retry

_WRAP_KEY = "result"


@functools.cache
def _response_adapter() -> TypeAdapter[ModelResponse]:
    return TypeAdapter(ModelResponse)


def check_model_response(value: Any) -> ModelResponse:
    """A `ModelResponse` from itself or from its JSON form (a journal row read back)."""
    if isinstance(value, ModelResponse):
        return value
    return _response_adapter().validate_python(value)


class _ModelStep:
    """The target the door sees for one agent's model calls: input is the message list,
    output a `ModelResponse` whose `output` is still plain JSON (so it journals as is)."""

    __slots__ = (
        "_output",
        "agent",
        "breaker",
        "breaker_key",
        "fallbacks",
        "model",
        "name",
        "output_schema",
        "retry",
        "settings",
        "timeout",
        "tool_specs",
        "tools",
        "wrapped",
    )

    check_output = staticmethod(check_model_response)

    def __init__(
        self, agent: LLMAgent, model: Model, fallback_models: Sequence[Model] = ()
    ) -> None:
        self.name = "model"
        self.agent = agent.name
        self.model = model
        # A breaker guards the model endpoint, shared by every agent that uses it.
        self.breaker = getattr(model, "breaker", None) or agent.model_breaker
        self.breaker_key = f"model:{getattr(model, 'endpoint', None) or model.name}"
        self.fallbacks = tuple(_ModelStep(agent, m) for m in fallback_models)
        self.tools = agent.tools
        self.tool_specs: tuple[ToolSpec, ...] = tuple(t.spec for t in agent.tools.values())
        self.settings = agent.settings
        self.retry = getattr(model, "retry", None) or agent.retry  # a model may carry its own
        self.timeout: float | None = None
        self.output_schema, self.wrapped = _output_schema(agent.name, agent.output_type)
        self._output = agent.output_adapter

    async def invoke(self, call: Call) -> ModelResponse:
        response = await self.model.respond(
            call.input,
            tools=self.tool_specs,
            output_schema=self.output_schema,
            settings=self.settings,
        )
        call.usage = response.usage
        if response.tool_calls:
            self._check_tool_calls(response, call.key)
        elif self._output is not None:
            response = self._check_output(response, call.key)
        return response

    def _check_tool_calls(self, response: ModelResponse, key: str) -> None:
        for tc in response.tool_calls:
            tool = self.tools.get(tc.name)
            if tool is None:
                raise ModelResponseError(
                    f"agent {self.agent!r} at {key}: model asked for unknown tool {tc.name!r} "
                    f"(tools: {sorted(self.tools) or 'none'})"
                )
            try:
                tool.check_input(tc.arguments)
            except ValidationError as e:
                raise ModelResponseError(
                    f"agent {self.agent!r} at {key}: arguments for tool {tc.name!r}: "
                    f"{describe_validation_error(e)}"
                ) from None

    def _check_output(self, response: ModelResponse, key: str) -> ModelResponse:
        """Validate the structured output now, inside the step, so a bad one is retried."""
        assert self._output is not None
        raw = response.output
        where = f"agent {self.agent!r} at {key}"
        if raw is None:
            try:
                raw = json.loads(response.text)
            except ValueError:
                raise ModelResponseError(
                    f"{where}: expected structured output, got text {response.text[:120]!r}"
                ) from None
        if self.wrapped and isinstance(raw, dict) and set(raw) == {_WRAP_KEY}:
            raw = raw[_WRAP_KEY]
        try:
            self._output.validate_python(raw)
        except ValidationError as e:
            raise ModelResponseError(
                f"{where}: structured output {describe_validation_error(e)}"
            ) from None
        return ModelResponse(
            response.text,
            response.tool_calls,
            raw,
            response.usage,
            response.model,
            response.finish_reason,
        )


class LLMAgent(AgentBase[Any, Any]):
    """A model with instructions and tools. Its output is text, or `output_type` when set.

    `fallback_models` are tried in order when the model fails for good (after retries, or
    while its circuit is open); `model_breaker` guards the model endpoint (unless the model
    carries a `breaker` of its own).
    """

    def __init__(
        self,
        name: str,
        *,
        model: Model | str | None = None,
        instructions: str,
        tools: Sequence[Tool] = (),
        output_type: Any = None,
        max_turns: int = 10,
        settings: ModelSettings | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        fallback_models: Sequence[Model | str] = (),
        model_breaker: Breaker | None = None,
    ) -> None:
        self._setup(
            name,
            input_type=Any,
            output_type=output_type or str,
            retry=retry,
            timeout=timeout,
            description=description,
        )
        if max_turns < 1:
            raise UsageError(f"agent {name!r}: max_turns must be at least 1, got {max_turns}")
        self.instructions = instructions
        self.max_turns = max_turns
        self.settings = settings
        self.tools: dict[str, Tool] = {}
        for t in tools:
            if not isinstance(t, Tool):
                raise UsageError(f"agent {name!r}: {t!r} is not a Tool (decorate it with @tool)")
            if t.name in self.tools:
                raise UsageError(f"agent {name!r}: two tools are named {t.name!r}")
            self.tools[t.name] = t
        self.output_adapter: TypeAdapter[Any] | None = (
            None if output_type in (None, str) else TypeAdapter(output_type)
        )
        for spec in (model, *fallback_models):
            if isinstance(spec, str):
                parse_model_spec(spec)  # a typo fails here, before any run starts
        self._model_spec = model
        self._fallback_specs = tuple(fallback_models)
        self.model_breaker = model_breaker
        self._step: _ModelStep | None = None

    @property
    def model(self) -> Model:
        """The model, resolved on first use so an agent can be declared before env is set."""
        return self._model_step().model

    def _model_step(self) -> _ModelStep:
        if self._step is None:
            model = resolve_model(self._model_spec)
            if model is None:
                raise UsageError(
                    f"agent {self.name!r} has no model: pass model= (a Model, "
                    "'openai:<name>' or 'scripted') or set PODIUM_MODEL"
                )
            fallbacks = []
            for spec in self._fallback_specs:
                fb = resolve_model(spec)
                if fb is None:
                    raise UsageError(f"agent {self.name!r}: fallback model {spec!r} is not set up")
                fallbacks.append(fb)
            self._step = _ModelStep(self, model, fallbacks)
        return self._step

    async def run(self, input: Any, ctx: RunContext) -> Any:
        step = self._model_step()
        messages = [Message.system(self.instructions), Message.user(_render(input))]
        for _ in range(self.max_turns):
            response: ModelResponse = await ctx.invoke(step, "model", tuple(messages))
            if not response.tool_calls:
                return self._final(response)
            messages.append(Message.assistant(response.text, response.tool_calls))
            for tc in response.tool_calls:
                tool = self.tools[tc.name]
                result = await ctx.use(tool, tc.arguments)
                if getattr(tool, "ends_turn", False):  # e.g. a Handoff's transfer tool
                    return result
                messages.append(Message.tool(tc.id, _render(result), tc.name))
        raise MaxTurnsExceeded(
            f"agent {self.name!r} at {ctx.key}: still asking for tools after "
            f"{self.max_turns} model turn(s) (max_turns={self.max_turns})"
        )

    def _final(self, response: ModelResponse) -> Any:
        if self.output_adapter is None:
            return response.text
        return self.output_adapter.validate_python(response.output)


def _render(value: Any) -> str:
    return value if isinstance(value, str) else dumps(value)


def _output_schema(agent: str, output_type: Any) -> tuple[OutputSchema | None, bool]:
    """The JSON Schema a model must answer in, and whether it is wrapped: providers want an
    object at the top, so `int` or `list[Item]` travel as `{"result": ...}`."""
    if output_type in (None, str):
        return None, False
    schema = TypeAdapter(output_type).json_schema()
    wrapped = schema.get("type") != "object"
    if wrapped:
        defs = schema.pop("$defs", None)
        schema = {
            "type": "object",
            "properties": {_WRAP_KEY: schema},
            "required": [_WRAP_KEY],
            "additionalProperties": False,
        }
        if defs:
            schema["$defs"] = defs
    name = str(schema.get("title") or f"{agent}_output")
    return OutputSchema(_schema_name(name), schema, strict=_strict_ready(schema)), wrapped


def _schema_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64]


def _strict_ready(schema: Any) -> bool:
    """Strict structured output needs every object closed and every property required; say
    strict only when the schema already is, rather than rewrite the user's type."""
    if isinstance(schema, list):
        return all(_strict_ready(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    if "properties" in schema:
        props = schema["properties"]
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required", ())) != set(props):
            return False
    return all(_strict_ready(v) for v in schema.values())
