"""Agents for the official conformance suites (see README.md): what `run.py` serves.

- `echo` is the agent the A2A TCK talks to: it answers any message (text, data or a file
  part) with what it said. `ask` first asks the client a question (the task is
  `input-required` until a reply comes), then answers with both: the TCK runs against it too,
  for the tests that want a task that is not over after a blocking send.
- `test_*` and `json_schema_2020_12_tool` are the fixture tools the MCP conformance suite
  (`@modelcontextprotocol/conformance` 0.1.12, `server` scenarios) calls by name, written as
  plain podium agents: what a podium agent can say over MCP is text and structured content,
  so the scenarios that want images, audio, embedded resources, log messages, sampling or
  elicitation from a tool get the closest a podium agent comes, and fail (README.md lists
  each and why).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from podium import HumanAgent, RunContext, agent


def _said(message: Any) -> str:
    return message if isinstance(message, str) else json.dumps(message, sort_keys=True)


@agent
async def echo(message: Any) -> str:
    """Answers every message with what it said."""
    return f"echo: {_said(message)}"


@agent
async def ask(message: Any, ctx: RunContext) -> str:
    """Asks what to add to every message, then answers with both."""
    more = await ctx.call(HumanAgent("more", question="anything to add?", answer_type=Any), message)
    return f"echo: {_said(message)} / {_said(more)}"


# MCP fixture tools (their names and arguments are the suite's) -------------------------------
@agent
async def test_simple_text(input: Any = None) -> str:
    """Returns simple text (scenario tools-call-simple-text)."""
    return "This is a simple text response for testing."


@agent
async def test_error_handling(input: Any = None) -> str:
    """Always fails (scenario tools-call-error): the call is a tool error."""
    raise RuntimeError("This tool intentionally returns an error for testing")


@agent
async def _progress_step(n: int) -> int:
    await asyncio.sleep(0.05)
    return n


@agent
async def test_tool_with_progress(input: Any, ctx: RunContext) -> str:
    """Three steps ~50 ms apart (scenario tools-call-with-progress): podium reports one
    progress notification per completed step."""
    for n in range(3):
        await ctx.call(_progress_step, n)
    return "Progress tool completed"


@agent
async def test_tool_with_logging(input: Any = None) -> str:
    """Scenario tools-call-with-logging wants 3 `notifications/message` log messages:
    podium sends none (MCP logging is not implemented), so it only answers."""
    return "Logging tool completed (podium sends no MCP log messages)"


@agent
async def test_image_content(input: Any = None) -> dict[str, str]:
    """Scenario tools-call-image wants an `image` content item: podium has no image
    content, so the PNG goes as structured content (base64)."""
    return {"mimeType": "image/png", "data": PNG_1PX}


@agent
async def test_audio_content(input: Any = None) -> dict[str, str]:
    """Scenario tools-call-audio wants an `audio` content item: podium has none, so the WAV
    goes as structured content (base64)."""
    return {"mimeType": "audio/wav", "data": WAV_SILENCE}


@agent
async def test_embedded_resource(input: Any = None) -> dict[str, str]:
    """Scenario tools-call-embedded-resource wants a `resource` content item: podium has
    none, so the resource goes as structured content."""
    return {
        "uri": "test://embedded-resource",
        "mimeType": "text/plain",
        "text": "This is an embedded resource content.",
    }


@agent
async def test_multiple_content_types(input: Any = None) -> dict[str, Any]:
    """Scenario tools-call-mixed-content wants text, image and resource items: podium
    answers with one text item and the same as structured content."""
    return {"text": "Multiple content types test:", "image": PNG_1PX, "resource": {"test": 1}}


class Sampling(BaseModel):
    prompt: str


@agent
async def test_sampling(args: Sampling) -> str:
    """Scenario tools-call-sampling wants the server to ask the client's model
    (`sampling/createMessage`): podium agents call their own models, so it only answers."""
    return f"podium does not ask the client to sample; prompt was {args.prompt!r}"


class Elicitation(BaseModel):
    message: str


@agent
async def test_elicitation(args: Elicitation) -> str:
    """Scenario tools-call-elicitation wants `elicitation/create`: a podium run that needs a
    person waits in podium's inbox instead (the tool returns a ticket), so it only answers."""
    return f"podium does not elicit over MCP; message was {args.message!r}"


@agent
async def test_elicitation_sep1034_defaults(input: Any = None) -> str:
    """Scenario elicitation-sep1034-defaults: elicitation is not implemented (see above)."""
    return "podium does not elicit over MCP"


@agent
async def test_elicitation_sep1330_enums(input: Any = None) -> str:
    """Scenario elicitation-sep1330-enums: elicitation is not implemented (see above)."""
    return "podium does not elicit over MCP"


class address(BaseModel):  # lower case: the suite looks for `$defs.address`
    street: str | None = None
    city: str | None = None


_Address = address  # the field below is named `address` too


class Person(BaseModel):
    """JSON Schema 2020-12 keywords: `$schema`, `$defs` (a nested model), no extra keys."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )
    name: str | None = None
    address: _Address | None = None


@agent(name="json_schema_2020_12_tool")
async def json_schema_tool(person: Person) -> str:
    """Tool with JSON Schema 2020-12 features (scenario json-schema-2020-12)."""
    return f"hello {person.name}"


PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAF"
    "BQIAX8jx0gAAAABJRU5ErkJggg=="
)
WAV_SILENCE = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="
