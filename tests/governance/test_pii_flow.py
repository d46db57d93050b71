"""PII and secrets through a multi-agent workflow on a real SQLite file: canaries seeded in
the input reach only the agent and the tool allowed to see them, and nothing the run stores
or the CLI prints holds a raw canary."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from podium import (
    Decision,
    HumanAgent,
    LLMAgent,
    Parallel,
    Privacy,
    Runtime,
    Sequential,
    agent,
    tool,
)
from podium.cli.app import app
from podium.models.scripted import ScriptedModel, tool_call
from podium.testing import canaries, leaks

CARD = "4539 1488 0343 6467"
EMAIL = "jane.doe.4821@example.com"
KEY = "sk-proj-Zq8vX2mN4bT7yR1wK9pL3sD6fG0hJ5cA"
CHARGED: list[dict[str, Any]] = []


@tool(sees_pii={"card"})  # the tool declares what it may see
def charge_card(card: str, amount: int) -> str:
    """Charge a card (a test double that remembers what it was given)."""
    CHARGED.append({"card": card, "amount": amount})
    return f"charged {amount} to the card"


def _flow(summariser: ScriptedModel, biller: ScriptedModel) -> Sequential:
    summarise = LLMAgent("summarise", model=summariser, instructions="Summarise the request.")
    billing = LLMAgent(
        "billing", model=biller, instructions="Charge the card.", tools=[charge_card]
    )

    @agent
    def intake(text: str) -> str:
        return text

    return Sequential("support", [intake, Parallel("work", [summarise, billing])])


def _request() -> str:
    return f"Please charge {CARD} 40 EUR, mail the receipt to {EMAIL}. My key is {KEY}."


def _leaks(text: str, values: list[str]) -> list[str]:
    return [v for v in values if v in text]


async def test_canaries_reach_only_the_allowed_agent_and_tool(tmp_path: Path) -> None:
    CHARGED.clear()
    summariser = ScriptedModel(["A customer wants a charge and a receipt."])

    def bill(messages: Any, tools: Any, schema: Any) -> Any:
        if any(m.role == "tool" for m in messages):
            return f"charged the card {CARD}"  # an answer that repeats the card
        text = messages[-1].content
        # the billing model reads the raw card it may see, and hands it to the tool
        card = CARD if CARD in text else "<no card seen>"
        return tool_call("charge_card", card=card, amount=40)

    biller = ScriptedModel(bill)
    db = tmp_path / "runs.db"
    privacy = Privacy({"billing": {"card"}}, key="test-key")  # or LLMAgent(sees_pii=...)
    async with Runtime(f"sqlite:///{db}", pii=privacy) as rt:
        result = await rt.run(_flow(summariser, biller), _request())
        assert result.ok, result.error
        events = await rt.events(result.run_id)
        steps = await rt.steps(result.run_id)
    raw = [CARD, EMAIL, KEY]
    # the summariser (allowed nothing) saw tokens only
    prompt = " ".join(m.content for c in summariser.calls for m in c.messages)
    assert not _leaks(prompt, raw)
    assert "<card:" in prompt and "<email:" in prompt and "<secret:" in prompt
    # the billing agent's model saw the card, not the email or the key
    billing_prompt = " ".join(m.content for c in biller.calls for m in c.messages)
    assert CARD in billing_prompt
    assert not _leaks(billing_prompt, [EMAIL, KEY])
    # the tool got the raw card; the card in billing's answer is a token to the others
    assert CHARGED == [{"card": CARD, "amount": 40}]
    assert not _leaks(repr(result.output), raw) and "<card:" in repr(result.output)
    # every reveal is recorded, without the value
    reveals = [e for e in events if e.kind == "pii.reveal"]
    assert {(e.data or {}).get("agent") for e in reveals} == {"billing"}
    assert all(set(e.data or {}) == {"token_kind", "agent"} for e in reveals)
    # nothing stored holds a canary: rows, events, and the file's bytes
    assert not _leaks(repr(steps) + repr(events), raw)
    for path in tmp_path.iterdir():
        data = path.read_bytes().decode("utf-8", "replace")
        assert not _leaks(data, raw), path
    # nor does what the CLI prints
    cli = CliRunner()
    store = f"sqlite:///{db}"
    for args in (
        ["show", result.run_id, "--store", store],
        ["trace", result.run_id, "--store", store],
        ["trace", result.run_id, "--store", store, "--json"],
        ["runs", "--store", store],
        ["dlq", "list", "--store", store],
    ):
        out = await asyncio.to_thread(cli.invoke, app, args)
        assert out.exit_code == 0, (args, out.output)
        assert not _leaks(out.output, raw), args


async def test_a_resumed_run_reveals_from_the_vault(tmp_path: Path) -> None:
    """A fresh runtime (another process, the same key) reveals the stored tokens to the
    allowed tool: the vault, not this process's memory, holds the values."""
    CHARGED.clear()
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    privacy = Privacy(key="k")  # charge_card declares sees_pii={"card"} itself

    @agent
    async def clerk(text: str, ctx: Any) -> str:
        return str(await ctx.use(charge_card, {"card": text, "amount": 5}))

    async with Runtime(db, pii=privacy) as rt:
        run = await rt.run(clerk, CARD)
        assert run.ok, run.error
        stored = (await rt.get_run(run.run_id)).input
        reveals = [e.data for e in await rt.events(run.run_id) if e.kind == "pii.reveal"]
    assert reveals == [{"token_kind": "card", "agent": "charge_card"}]
    assert stored.startswith("<card:") and CHARGED[-1]["card"] == CARD
    async with Runtime(db, pii=privacy) as rt:  # a new runtime: nothing known in memory
        again = await rt.run(clerk, stored)  # the token alone, in a new run: not revealed
        assert again.ok
    assert CHARGED[-1]["card"] == stored  # tokens are per run: another run cannot use them


async def test_a_resumed_run_reveals_its_tokens_from_the_vault(
    tmp_path: Path, persistent_url: str
) -> None:
    """The run fails after its input was tokenized; a new runtime (as another process
    would, with the same key) resumes it, and the tool still gets the raw card: from the
    sealed vault, since nothing is in this runtime's memory."""
    CHARGED.clear()
    flag = tmp_path / "down"
    db = persistent_url

    @agent
    def intake(text: str) -> str:
        return f"card on file: {text}"

    @agent
    async def pay(text: str, ctx: Any) -> str:
        if flag.exists():
            raise RuntimeError("the payment service is down")
        card = text.removeprefix("card on file: ")
        return str(await ctx.use(charge_card, {"card": card, "amount": 9}))

    flow = Sequential("checkout", [intake, pay])

    async def fail_then_resume(key: str) -> None:
        flag.touch()
        async with Runtime(db, pii=Privacy(key="shared"), retry=None) as rt:
            failed = await rt.run(flow, CARD)
            assert not failed.ok
        flag.unlink()
        async with Runtime(db, pii=Privacy(key=key)) as rt:  # nothing in its memory
            done = await rt.resume(failed.run_id, flow)
            assert done.ok, done.error

    await fail_then_resume("shared")
    assert CHARGED == [{"card": CARD, "amount": 9}]
    await fail_then_resume("another key")  # the vault opens only with its own key
    assert CHARGED[1]["card"].startswith("<card:")
    async with Runtime(db) as rt:
        store = await rt.open()
        kept = [await rt.steps(r.run_id) for r in await rt.list_runs()]
        kept += [await rt.events(r.run_id) for r in await rt.list_runs()]
        kept.append(await store.kv_list("pii-vault"))
    assert len(kept[-1]) == 2  # one sealed card per run
    assert CARD not in repr(kept)


async def test_without_privacy_secrets_are_masked_and_pii_kept(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"

    @agent
    def leaky(text: str) -> str:
        raise RuntimeError(f"upstream refused key {KEY} for {EMAIL}")

    @agent
    def echo(text: str) -> dict[str, str]:
        return {"said": text}

    async with Runtime(f"sqlite:///{db}") as rt:
        ok = await rt.run(echo, f"{EMAIL} {KEY}")
        failed = await rt.run(leaky, "x")
        assert not failed.ok
        out = (await rt.get_run(ok.run_id)).output
        entries = await rt.dead_letters()
    assert out == {"said": f"{EMAIL} <secret:openai_key>"}  # PII kept, the key masked
    assert KEY not in (failed.error or "") and "<secret:openai_key>" in (failed.error or "")
    assert KEY not in json.dumps(entries)
    data = db.read_bytes().decode("utf-8", "replace")
    assert KEY not in data and EMAIL in data


async def test_a_thousand_canaries_leave_no_trace(tmp_path: Path) -> None:
    """1,002 canaries (167 of each kind), one request each, through intake -> (summarise |
    billing, which may see cards) on SQLite: raw canaries in the prompts of the agent
    allowed nothing, the stored rows and events, the file, and the CLI's output: 0."""
    seeded = canaries(167, seed=3)
    summariser = ScriptedModel(lambda messages, tools, schema: "noted")
    biller = ScriptedModel(lambda messages, tools, schema: messages[-1].content)
    db = tmp_path / "runs.db"

    @agent
    def intake(text: str) -> str:
        return text

    flow = Sequential(
        "desk",
        [
            intake,
            Parallel(
                "work",
                [
                    LLMAgent("summarise", model=summariser, instructions="Summarise."),
                    LLMAgent("billing", model=biller, instructions="Bill.", sees_pii={"card"}),
                ],
            ),
        ],
    )
    async with Runtime(f"sqlite:///{db}", pii=Privacy(key="k")) as rt:
        runs = await asyncio.gather(*(rt.run(flow, f"{c.kind}: {c.value}") for c in seeded))
        assert all(r.ok for r in runs)
        stored = [await rt.steps(r.run_id) for r in runs] + [
            await rt.events(r.run_id) for r in runs
        ]
    prompt = " ".join(m.content for c in summariser.calls for m in c.messages)
    assert leaks(prompt, seeded) == []
    billed = " ".join(m.content for c in biller.calls for m in c.messages)
    cards = [c for c in seeded if c.kind == "card"]
    assert leaks(billed, seeded) == cards  # the allowed agent saw every card, and only cards
    assert leaks(repr(stored) + repr([r.output for r in runs]), seeded) == []
    assert leaks(db.read_bytes().decode("utf-8", "replace"), seeded) == []
    cli = CliRunner()
    printed = [
        await asyncio.to_thread(cli.invoke, app, [cmd, r.run_id, "--store", f"sqlite:///{db}"])
        for r in runs[::50]
        for cmd in ("show", "trace")
    ]
    assert leaks(" ".join(p.output for p in printed), seeded) == []


async def test_a_persons_decision_keeps_no_secret(tmp_path: Path) -> None:
    ask = HumanAgent("desk", question="Which key should we use?", answer_type=str)
    async with Runtime(f"sqlite:///{tmp_path / 'runs.db'}") as rt:
        waiting = await rt.run(ask, "hello")
        done = await rt.resume(waiting.run_id, ask, decision=Decision(answer=f"use {KEY}"))
        assert done.ok, done.error
        steps = await rt.steps(waiting.run_id)
        events = await rt.events(waiting.run_id)
    assert done.output == "use <secret:openai_key>"
    assert KEY not in repr(steps) + repr(events)
    assert KEY not in (tmp_path / "runs.db").read_bytes().decode("utf-8", "replace")


async def test_mask_mode_shows_bare_kinds_and_still_stores_tokens(tmp_path: Path) -> None:
    summariser = ScriptedModel(["ok"])
    flow = LLMAgent("summarise", model=summariser, instructions="Summarise.")
    async with Runtime(f"sqlite:///{tmp_path / 'r.db'}", pii=Privacy(mode="mask")) as rt:
        result = await rt.run(flow, _request())
        stored = (await rt.get_run(result.run_id)).input
    said = summariser.calls[0].messages[-1].content
    assert "<card>" in said and "<email>" in said and "<secret>" not in said
    assert "<secret:" in said and not _leaks(said, [CARD, EMAIL, KEY])
    assert "<card:" in stored and not _leaks(stored, [CARD, EMAIL, KEY])


async def test_a_cached_answer_keeps_no_secret(tmp_path: Path) -> None:
    @tool(cache=True)
    def lookup(name: str) -> str:
        return f"the key of {name} is {KEY}"

    @agent
    async def ask(text: str, ctx: Any) -> str:
        return str(await ctx.use(lookup, {"name": text}))

    cache = tmp_path / "cache.db"
    async with Runtime(f"sqlite:///{tmp_path / 'r.db'}", cache=f"sqlite:///{cache}") as rt:
        first = await rt.run(ask, "billing")
        second = await rt.run(ask, "billing")  # a hit: served from the cache, masked
    assert KEY in str(first.output)  # in this process, the tool's own answer
    assert second.output == "the key of billing is <secret:openai_key>"
    for path in tmp_path.iterdir():  # the cache's file, the store's, their journals
        assert KEY not in path.read_bytes().decode("utf-8", "replace"), path
