"""Structured output that any server can give: lenient JSON reading and the schema in words.

Small models and servers without a JSON mode wrap their answer in Markdown fences or put raw
newlines inside strings. Both are read here (the fences stripped, `json.loads(strict=False)`
for control characters in strings), so that only an answer that is really not JSON goes back
to the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from podium.core.records import Usage
from podium.errors import OutputTruncatedError
from podium.models.base import Message, OutputSchema

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)\n?[ \t]*```", re.DOTALL)


def parse_json_text(text: str) -> Any:
    """The JSON value in `text`, read as leniently as JSON allows. Raises `ValueError` with
    the parser's message when there is none."""
    stripped = text.strip()
    try:
        return json.loads(stripped, strict=False)
    except ValueError as first:
        fenced = _FENCE.search(stripped)
        if fenced is None:
            raise
        try:
            return json.loads(fenced.group(1), strict=False)
        except ValueError:
            raise first from None


def schema_instruction(schema: OutputSchema) -> str:
    """What a model is told when the server cannot be given the schema itself."""
    return (
        "Answer with one JSON object and nothing else (no prose, no Markdown), matching this "
        f"JSON Schema:\n{json.dumps(schema.schema, separators=(',', ':'))}"
    )


def with_schema_in_prompt(messages: Sequence[Message], schema: OutputSchema) -> list[Message]:
    """The messages with the schema told in the (first) system message."""
    told = schema_instruction(schema)
    out = list(messages)
    for i, m in enumerate(out):
        if m.role == "system":
            out[i] = Message(m.role, f"{m.content}\n\n{told}" if m.content else told, name=m.name)
            return out
    return [Message.system(told), *out]


def truncated(
    model: str, what: str, max_tokens: int | None, usage: Usage, text: str = ""
) -> OutputTruncatedError:
    """The error for an answer that stopped at the token limit where it had to be whole,
    naming the limit to raise."""
    limit = f"max_tokens={max_tokens}" if max_tokens is not None else "the server's max_tokens"
    shown = f": {text[:80]!r}" if text else ""
    return OutputTruncatedError(
        f"model {model!r}: the {what} was cut off at {limit} (finish_reason='length'){shown}; "
        "asking again would stop at the same place: raise max_tokens or ask for less",
        max_tokens=max_tokens,
        usage=usage,
    )
