"""Due diligence: five analysts at once, a synthesis writes the memo, gaps are named.

    due_diligence (Sequential)
    ├── load_dossier       the deal's dossier (dossier.json)
    ├── analysts           Parallel(min_success=4, branch_timeout=3s, merge=synthesis)
    │   ├── financial_analyst | legal_analyst | market_analyst
    │   ├── technology_analyst | esg_analyst          LLMAgents -> Finding
    │   └── synthesis                                 LLMAgent(ParallelResult) -> Memo
    └── file_memo          writes the memo and findings (memos, findings tables)

With four of five analysts the run still completes: the memo says which review is missing
and why, and its recommendation is conditional on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from examples.due_diligence import tables
from examples.due_diligence.analysts import AREAS, MODEL_LABEL, Memo, analyst, synthesis_agent
from podium import Parallel, ParallelResult, RunContext, RunResult, Runtime, Sequential, agent, tool
from podium.stores import default_store_url

TARGET = "examples.due_diligence.flow:flow"
DOSSIER = Path(__file__).with_name("dossier.json")
BRANCH_TIMEOUT = 3.0


@agent(description="Opens the deal's dossier.")
def load_dossier(deal_id: str) -> dict[str, Any]:
    dossier: dict[str, Any] = json.loads(DOSSIER.read_text())
    if dossier["deal_id"] != deal_id:
        raise LookupError(f"no dossier for deal {deal_id!r}; there is {dossier['deal_id']!r}")
    return dossier


@tool(effect=True)
def save_memo(memo: dict[str, Any], run_id: str) -> str:
    """Replace the deal's memo and findings with these (one memo per deal).

    Args:
        memo: The memo.
        run_id: The run that wrote it.
    """
    tables.save_memo(memo, run_id)
    return str(memo["deal_id"])


@agent(description="Files the memo in the deal records.")
async def file_memo(result: ParallelResult, ctx: RunContext) -> Memo:
    memo = Memo.model_validate(result.value)
    await ctx.use(save_memo, {"memo": memo.model_dump(), "run_id": ctx.run_id})
    ctx.emit("diligence.memo", recommendation=memo.recommendation, gaps=list(memo.gaps))
    return memo


def build_flow(
    *, fail: str | None = None, hang: str | None = None, branch_timeout: float = BRANCH_TIMEOUT
) -> Sequential:
    """`fail` / `hang` name an area whose analyst raises / never answers."""
    for flag in (fail, hang):
        if flag is not None and flag not in AREAS:
            raise ValueError(f"unknown area {flag!r}; areas are {', '.join(AREAS)}")
    team = Parallel(
        "analysts",
        [analyst(a, fail=a == fail, hang=a == hang) for a in AREAS],
        min_success=4,
        branch_timeout=branch_timeout,
        merge=synthesis_agent(),
        description="Five reviews of the dossier at once, merged into a memo.",
    )
    return Sequential("due_diligence", [load_dossier, team, file_memo])


flow = build_flow()


async def review(deal_id: str, store: str | None = None, **options: Any) -> RunResult:
    async with Runtime(store) as rt:
        return await rt.run(build_flow(**options), deal_id, target=TARGET)


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.due_diligence [--fail AREA | --hang AREA] [--store URL]`."""
    parser = argparse.ArgumentParser(prog="python -m examples.due_diligence")
    parser.add_argument("deal_id", nargs="?", default="DD-NWR-2025")
    parser.add_argument("--fail", choices=AREAS, help="make this analyst fail")
    parser.add_argument("--hang", choices=AREAS, help="make this analyst never answer")
    parser.add_argument("--branch-timeout", type=float, default=BRANCH_TIMEOUT)
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    result = asyncio.run(
        review(
            args.deal_id,
            args.store,
            fail=args.fail,
            hang=args.hang,
            branch_timeout=args.branch_timeout,
        )
    )
    if result.ok:
        memo = result.output
        print(memo.text)
        print()
        print(json.dumps({"recommendation": memo.recommendation, "gaps": memo.gaps}, indent=2))
    else:
        print(f"error: {result.error}", file=sys.stderr)
    print(f"model: {MODEL_LABEL}")
    print(f"run {result.run_id} {result.status}")
    print(f"store: {args.store or default_store_url()}   deal records: {tables.db_path()}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
