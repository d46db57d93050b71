"""A run started with privacy stays private when another runtime, given no `pii=`, resumes
it: the privacy is kept with the run (never its key), and the resuming process must hold
the vault key."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium import (
    Decision,
    HumanApproval,
    LLMAgent,
    Parallel,
    Privacy,
    Runtime,
    Sequential,
    UsageError,
)
from podium.models.scripted import ScriptedModel

CARD = "4539 1488 0343 6467"


def flow(summariser: ScriptedModel, biller: ScriptedModel) -> Sequential:
    return Sequential(
        "desk",
        [
            HumanApproval("check"),
            Parallel(
                "work",
                [
                    LLMAgent("summarise", model=summariser, instructions="Summarise."),
                    LLMAgent("billing", model=biller, instructions="Bill.", sees_pii={"card"}),
                ],
            ),
        ],
    )


async def test_a_resuming_runtime_keeps_the_runs_privacy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_PII_KEY", "shared-key")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    summariser, biller = ScriptedModel(["summary"]), ScriptedModel(["billed"])
    async with Runtime(url, pii=Privacy()) as rt:
        waiting = await rt.run(flow(summariser, biller), f"charge {CARD}")
        assert waiting.status == "waiting"
    async with Runtime(url) as other:  # no pii= here, and PODIUM_PII unset
        done = await other.resume(
            waiting.run_id, flow(summariser, biller), decision=Decision.approve()
        )
        assert done.ok, done.error
    assert CARD not in summariser.calls[0].messages[-1].content
    assert "<card:" in summariser.calls[0].messages[-1].content
    assert CARD in biller.calls[0].messages[-1].content  # allowed: the vault revealed it


async def test_resuming_a_private_run_without_the_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    summariser, biller = ScriptedModel(["summary"]), ScriptedModel(["billed"])
    async with Runtime(url, pii=Privacy(key="only-here")) as rt:
        waiting = await rt.run(flow(summariser, biller), f"charge {CARD}")
    monkeypatch.delenv("PODIUM_PII_KEY", raising=False)
    async with Runtime(url) as other:
        with pytest.raises(UsageError, match="set PODIUM_PII_KEY"):
            await other.resume(
                waiting.run_id, flow(summariser, biller), decision=Decision.approve()
            )
    assert summariser.calls == []  # nothing ran with its PII unprotected
