"""The podium agent the A2A tests serve (`podium a2a serve tests/protocols/served.py:desk`).

ask ...     asks a person "which colour?" (the A2A task is input-required), then
            answers "colour REPLY"
approve     waits for an approval, then answers "approved"
slow N      works N seconds, then answers "slow done"
fail        fails, "told to fail"
anything    answers the text upper-cased (in two steps, for the stream)
"""

from __future__ import annotations

import asyncio

from podium import HumanAgent, HumanApproval, RunContext, UsageError, agent

question = HumanAgent("colour", question="which colour?")
approval = HumanApproval("go", prompt="go ahead?")


@agent
async def shout(text: str) -> str:
    return text.upper()


@agent
async def exclaim(text: str) -> str:
    return text + "!"


@agent
async def sleeper(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


@agent
async def desk(text: str, ctx: RunContext) -> str:
    """A front desk: what it does depends on the text (see the module)."""
    if text.startswith("ask"):
        return f"colour {await ctx.call(question, text)}"
    if text == "approve":
        await ctx.call(approval, text)
        return "approved"
    if text.startswith("slow"):
        await ctx.call(sleeper, float(text.split()[1]))
        return "slow done"
    if text == "fail":
        raise UsageError("told to fail")
    return str(await ctx.call(exclaim, await ctx.call(shout, text)))
