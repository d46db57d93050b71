"""The flow: a writer drafts, then a loop of critic and reviser polishes the draft.

    essay = Sequential("essay", [writer, Loop("revise", reviser, until=critic, ...)])

The critic judges each draft (a `Critique` with `approved` and `notes`); while it does not
approve, the reviser gets a `LoopState` holding the current draft and the critic's notes and
writes the next draft. The loop stops when the critic approves, after `MAX_ROUNDS` revisions,
or when the reviser hands back a draft it wrote before.

With no model given, each agent runs on a `ScriptedModel` that answers from the request (the
critic checks two house rules; the reviser fixes what the notes name), so the example runs
offline and in the test suite. Pass `--model openai:gpt-4o-mini` to use a real one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from podium import (
    NO_RETRY,
    LLMAgent,
    Message,
    OutputSchema,
    Runtime,
    ScriptedModel,
    Sequential,
    ToolSpec,
)
from podium.patterns.loop import Loop, LoopState
from podium.stores import default_store_url

MAX_ROUNDS = 4
MAX_WORDS = 60
TARGET = "examples.write_critique_revise.flow:flow"
SAMPLE_TOPIC = "Why a durable journal matters for AI agents"


class Draft(BaseModel):
    title: str
    body: str


class Critique(BaseModel):
    approved: bool
    notes: str


WRITER = "Write a short piece (a title and one paragraph) on the topic you are given."
CRITIC = (
    "You review short pieces for a newsletter. Approve a draft only if its body gives a "
    f"concrete example (a sentence starting 'For example') and has at most {MAX_WORDS} words. "
    "Otherwise say, in one sentence, the single most important thing to fix."
)
REVISER = (
    "You revise drafts. You get the current draft and the critic's notes: fix what the notes "
    "name, keep the rest, and answer with the whole revised draft."
)


def build_flow(model: Any = None, *, models: Mapping[str, Any] | None = None) -> Sequential:
    """The whole flow; every agent on `model`, or on `models[agent name]`, or on its own
    scripted model."""
    chosen = {
        "writer": model or scripted_writer(),
        "critic": model or scripted_critic(),
        "reviser": model or scripted_reviser(),
        **(models or {}),
    }
    writer = LLMAgent("writer", model=chosen["writer"], instructions=WRITER, output_type=Draft)
    critic = LLMAgent("critic", model=chosen["critic"], instructions=CRITIC, output_type=Critique)
    reviser = LLMAgent("reviser", model=chosen["reviser"], instructions=REVISER, output_type=Draft)
    revise = Loop(
        "revise", reviser, until=critic, state=True, check_first=True, max_turns=MAX_ROUNDS
    )
    return Sequential("essay", [writer, revise])


# scripted models: deterministic stand-ins that answer from what they are asked ---------------

FIRST_DRAFT = (
    "Agents call models and tools many times in one task, and any of those calls can fail. "
    "When a process dies halfway, everything the agents already did is at risk of being done "
    "again: money charged twice, emails sent twice, tokens paid twice. A journal records each "
    "step as it completes, so a restarted run can skip straight to where it stopped, and "
    "nobody has to guess what already happened."
)
EXAMPLE = "For example, a refund agent that crashes after paying resumes without paying twice."


def _request(messages: Sequence[Message]) -> Any:
    return json.loads(messages[-1].content)


def scripted_writer() -> ScriptedModel:
    def answer(messages: Sequence[Message], tools: Sequence[ToolSpec], _: Any) -> Any:
        return {"title": "Write it down first", "body": FIRST_DRAFT}

    return ScriptedModel(answer, name="scripted-writer")


def critique(draft: Draft) -> Critique:
    """The critic's house rules, as the scripted critic applies them."""
    if "For example" not in draft.body:
        return Critique(approved=False, notes="Add a concrete example.")
    words = len(draft.body.split())
    if words > MAX_WORDS:
        return Critique(approved=False, notes=f"Make it shorter: {words} words, {MAX_WORDS} max.")
    return Critique(approved=True, notes="Clear and concrete.")


def scripted_critic() -> ScriptedModel:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> Any:
        return critique(Draft.model_validate(_request(messages))).model_dump()

    return ScriptedModel(answer, name="scripted-critic")


def scripted_reviser() -> ScriptedModel:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> Any:
        state = LoopState.model_validate(_request(messages))
        draft = Draft.model_validate(state.current)
        notes = Critique.model_validate(state.verdict).notes
        body = draft.body
        if "example" in notes:
            body = f"{body} {EXAMPLE}"
        elif "shorter" in notes:
            sentences = body.split(". ")
            body = ". ".join(sentences[:1] + sentences[-2:])
        return {"title": draft.title, "body": body}

    return ScriptedModel(answer, name="scripted-reviser")


# running it ------------------------------------------------------------------------------------


flow = build_flow()


async def run_once(topic: str, model: Any = None, store: str | None = None) -> Any:
    """One run on `store` (default: `PODIUM_STORE`, else `./.podium/podium.db`). With the
    scripted models it is the module's `flow`, so `podium resume RUN` finds it again."""
    async with Runtime(store, retry=None if model else NO_RETRY) as rt:
        if model is None:
            return await rt.run(flow, topic, target=TARGET)
        return await rt.run(build_flow(model), topic)


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.write_critique_revise [TOPIC] [--model M] [--store URL]`."""
    parser = argparse.ArgumentParser(prog="python -m examples.write_critique_revise")
    parser.add_argument("topic", nargs="?", default=SAMPLE_TOPIC)
    parser.add_argument("--model", default=None, help="e.g. openai:gpt-4o-mini (default: scripted)")
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    result = asyncio.run(run_once(args.topic, args.model, args.store))
    store = args.store or default_store_url()
    if not result.ok:
        print(f"error: {result.error}", file=sys.stderr)
        how = f"podium resume {result.run_id} --store {store}"
        if args.model is not None:  # built for that model: not the module's flow
            how = "rt.resume(run_id, build_flow(model)) in Python"
        print(f"run {result.run_id} {result.status}; after a fix: {how}", file=sys.stderr)
        return 1
    out = result.output
    print(f"# {out.output.title}\n\n{out.output.body}\n")
    print(f"revisions: {out.turns}, status: {out.status}, run {result.run_id}")
    print(f"store: {store}   (podium trace {result.run_id} --store {store})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
