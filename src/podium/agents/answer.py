"""Asking a model for a typed answer, and sending it back with the problem when it misses.

    spec = AnswerSpec.for_type("judge", Decision)      # the schema, and how replies are read
    asking = Asking("judge", spec, messages, max_reasks=2)
    decision = await asking.answer(ctx, model_step)   # one journaled step per ask

A reply that is not JSON, or JSON that does not fit the type, is not retried as the same
request (it would get the same answer): the model's answer goes back into the conversation
with a user message naming the problem, and the model is asked again, as a new step, at most
`max_reasks` times. Each ask is its own journaled step, so on resume the bad answers and the
re-asks replay in order, and every ask's tokens are counted.

JSON is read leniently (Markdown fences stripped, raw newlines in strings allowed). An
answer cut off at the token limit is not sent back: it would be cut off again
(`OutputTruncatedError`, raised by the step itself via `AnswerSpec.check_whole`).

`Asking` is the one place where "ask a model for a typed answer" lives: `LLMAgent` drives it
between tool calls, and callers without tools use `answer()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from pydantic import TypeAdapter, ValidationError

from podium.core.serde import describe_validation_error, dumps
from podium.errors import ModelResponseError, StepError, UsageError
from podium.models.base import Message, ModelResponse, ModelSettings, OutputSchema
from podium.models.structured import parse_json_text, truncated

if TYPE_CHECKING:
    from podium.runtime.context import RunContext

WRAP_KEY = "result"
REASK: Final = object()
"""What `Asking.settle` returns when the model was sent back: ask again."""


class AnswerError(Exception):
    """Why a reply is not a valid answer, in words the model can act on."""


class AnswerSpec:
    """What a typed answer must be: the schema the model is given, and how a reply is read
    back into the type (with `{"result": ...}` unwrapped for non-object types)."""

    __slots__ = ("adapter", "schema", "wrapped")

    def __init__(self, adapter: TypeAdapter[Any], schema: OutputSchema, wrapped: bool) -> None:
        self.adapter = adapter
        self.schema = schema
        self.wrapped = wrapped

    @classmethod
    def for_type(cls, owner: str, output_type: Any) -> AnswerSpec | None:
        """The spec for `output_type`, or None for plain text (`None` or `str`)."""
        if output_type in (None, str):
            return None
        adapter: TypeAdapter[Any] = TypeAdapter(output_type)
        schema, wrapped = _output_schema(owner, adapter)
        return cls(adapter, schema, wrapped)

    def read(self, response: ModelResponse) -> Any:
        """The answer as the declared type, or `AnswerError` saying what is wrong."""
        raw = response.output
        if raw is None:
            text = response.text.strip()
            if not text:
                raise AnswerError("the answer was empty; a JSON object was expected")
            try:
                raw = parse_json_text(text)
            except ValueError as e:
                raise AnswerError(f"the answer is not JSON ({e}): {text[:120]!r}") from None
        if self.wrapped and isinstance(raw, dict) and set(raw) == {WRAP_KEY}:
            raw = raw[WRAP_KEY]
        try:
            return self.adapter.validate_python(raw)
        except ValidationError as e:
            raise AnswerError(
                f"the JSON does not fit the schema: {describe_validation_error(e)}"
            ) from None

    def check_whole(
        self, name: str, response: ModelResponse, settings: ModelSettings | None
    ) -> None:
        """Raise `OutputTruncatedError` for an answer that stopped at the token limit and does not
        read: sending it back would only be cut off again."""
        if response.finish_reason != "length" or response.tool_calls:
            return
        try:
            self.read(response)
        except AnswerError:
            limit = settings.max_tokens if settings is not None else None
            raise truncated(
                name, "structured answer", limit, response.usage, response.text
            ) from None


class Asking:
    """One conversation with a model that ends in a valid answer.

    `messages` grows with each re-ask. The step keys of the asks are counted here, so every
    ask of `step` under this context must go through `ask`.
    """

    __slots__ = ("asked", "max_reasks", "messages", "owner", "reasks", "spec")

    def __init__(
        self,
        owner: str,
        spec: AnswerSpec | None,
        messages: Sequence[Message],
        *,
        max_reasks: int = 2,
    ) -> None:
        if max_reasks < 0:
            raise UsageError(f"agent {owner!r}: max_reasks must be 0 or more, got {max_reasks}")
        self.owner = owner
        self.spec = spec
        self.messages = list(messages)
        self.max_reasks = max_reasks
        self.reasks = 0
        self.asked = 0

    async def ask(self, ctx: RunContext, step: Any) -> ModelResponse:
        """One model step through the door with the conversation so far."""
        self.asked += 1
        response: ModelResponse = await ctx.invoke(step, step.name, tuple(self.messages))
        return response

    def settle(self, ctx: RunContext, step: Any, response: ModelResponse) -> Any:
        """The answer in `response` (text, or the declared type), or `REASK` after sending
        the model back with the problem. Past `max_reasks` the last ask's step is named in
        a `StepError` (not retried: the re-asks were the retries)."""
        if self.spec is None:
            return response.text
        try:
            return self.spec.read(response)
        except AnswerError as problem:
            key = f"{ctx.key}/{step.name}#{self.asked - 1}"
            if self.reasks >= self.max_reasks:
                error = ModelResponseError(
                    f"agent {self.owner!r} at {key}: structured output still invalid after "
                    f"{self.reasks} re-ask(s) (max_reasks={self.max_reasks}): {problem}",
                    usage=response.usage,
                )
                raise StepError(self.owner, key, error) from None
            self.reasks += 1
            said = response.text or ("" if response.output is None else dumps(response.output))
            self.messages.append(Message.assistant(said))
            self.messages.append(Message.user(feedback(str(problem))))
            ctx.emit("model.reask", step=key, problem=str(problem), reask=self.reasks)
            return REASK

    async def answer(self, ctx: RunContext, step: Any) -> Any:
        """Ask until the answer is valid (for callers that offer no tools)."""
        while True:
            value = self.settle(ctx, step, await self.ask(ctx, step))
            if value is not REASK:
                return value


def feedback(problem: str) -> str:
    """The user message that sends a bad answer back."""
    return (
        f"Your answer could not be used: {problem}. Answer again with only a JSON object "
        "that matches the required schema."
    )


def _output_schema(owner: str, adapter: TypeAdapter[Any]) -> tuple[OutputSchema, bool]:
    """The JSON Schema a model must answer in, and whether it is wrapped: providers want an
    object at the top, so `int` or `list[Item]` travel as `{"result": ...}`."""
    schema = adapter.json_schema()
    wrapped = schema.get("type") != "object"
    if wrapped:
        defs = schema.pop("$defs", None)
        schema = {
            "type": "object",
            "properties": {WRAP_KEY: schema},
            "required": [WRAP_KEY],
            "additionalProperties": False,
        }
        if defs:
            schema["$defs"] = defs
    name = str(schema.get("title") or f"{owner}_output")
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
