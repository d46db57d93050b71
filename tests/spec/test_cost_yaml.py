"""Cost controls in YAML: `tiers:` at the top of a workflow, `tier:` (or `model: tier:...`),
`cache:` and `batchable:` on `llm` nodes; mistakes are problems with their place and line."""

from __future__ import annotations

import textwrap

import pytest

from podium import Cache, Runtime, SpecError
from podium.spec.loader import load_yaml_text

FLOW = """
name: desk
kind: sequential
tiers:
  fast: scripted:cheap-echo
  smart: [scripted:dear-echo, scripted:spare-echo]
steps:
  - name: triage
    kind: llm
    tier: fast
    instructions: Sort it.
    cache: {ttl: 60}
    batchable: 4
  - name: reply
    kind: llm
    model: tier:smart
    instructions: Answer it.
    cache: true
"""


def load(text: str) -> object:
    return load_yaml_text(textwrap.dedent(text))


async def test_a_workflow_carries_its_tiers_and_its_nodes_ask_for_them() -> None:
    desk = load(FLOW)
    triage, reply = desk.steps  # type: ignore[attr-defined]
    assert (triage.tier, reply.tier) == ("fast", "smart")
    assert triage.model_cache == Cache(ttl=60) and reply.model_cache == Cache()
    assert triage.batch is not None and triage.batch.size == 4
    rt = Runtime("memory://")
    result = await rt.run(desk, "hello")
    assert result.ok, result.error
    started = [e.data for e in await rt.events(result.run_id) if e.kind == "step.started"]
    models = [(d["model"], d["tier"]) for d in started if d.get("kind") == "model"]
    assert models == [("cheap-echo", "fast"), ("dear-echo", "smart")]
    mine = Runtime("memory://", tiers={"smart": "scripted:runtime-echo"})
    again = await mine.run(desk, "hello")
    started = [e.data for e in await mine.events(again.run_id) if e.kind == "step.started"]
    assert [d["model"] for d in started if d.get("kind") == "model"] == [
        "cheap-echo",  # the file's own fast tier
        "runtime-echo",  # the runtime's smart tier wins over the file's
    ]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            """
            name: desk
            kind: sequential
            steps:
              - name: a
                kind: llm
                tier: fast
                instructions: x
                tiers: {fast: scripted}
            """,
            "steps[0].tiers (line 9)",
            "`tiers:` goes at the top of the file only",
        ),
        (
            """
            name: a
            kind: llm
            tier: fast
            instructions: x
            tiers:
              fast: gopher:x
            """,
            "tiers.fast (line 7)",
            "model 'gopher:x' is not understood",
        ),
        (
            """
            name: a
            kind: llm
            model: scripted
            tier: fast
            instructions: x
            """,
            "(top level)",
            "give model= or tier=, not both",
        ),
        (
            """
            name: a
            kind: llm
            instructions: x
            batchable: 1
            """,
            "batchable (line 5)",
            "must be true, false or an int from 2 to 1,000",
        ),
        (
            """
            name: a
            kind: llm
            instructions: x
            cache: {ttl: 0}
            """,
            "cache",
            "greater than 0",
        ),
    ],
)
def test_mistakes_are_named_with_their_place(text: str, where: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load(text)
    assert where in str(caught.value) and message in str(caught.value)
