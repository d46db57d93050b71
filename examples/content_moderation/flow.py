"""Content moderation: concurrent policy checks, a coordinator decides, a person reviews.

content_moderation (ModerationDesk)
├── policies          Parallel(min_success=4, branch_timeout=2s, merge=coordinator)
│   ├── hate_check | violence_check | self_harm_check     LLMAgents (scripted)
│   ├── spam_check | privacy_check                        regex scorers
│   └── coordinator                                       LLMAgent -> ModerationDecision
├── review_post       only when escalated: HumanApproval "Publish this post?"
│                     approve -> published, reject -> blocked (the comment is the reason)
└── apply_decision    the post's status in the posts table
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from typing import Any, Literal

from pydantic import BaseModel

from examples.content_moderation import tables
from examples.content_moderation.policies import (
    MODEL_LABEL,
    POLICIES,
    ModerationDecision,
    Post,
    coordinator,
    policy_check,
)
from podium import (
    HumanApproval,
    Parallel,
    RejectedError,
    RunContext,
    RunResult,
    Runtime,
    Suspended,
    tool,
)
from podium.agents.base import AgentBase
from podium.stores import default_store_url

TARGET = "examples.content_moderation.flow:flow"
BRANCH_TIMEOUT = 2.0
REVIEW_DEADLINE = 4 * 3600.0
SAMPLE_TEXT = "Loved the trail run this morning, see you all on Saturday!"


class ReviewCase(BaseModel):
    """What the reviewer sees."""

    post: Post
    reasons: list[str]
    scores: dict[str, float]


class Moderated(BaseModel):
    post_id: str
    status: Literal["published", "blocked"]
    decided_by: Literal["coordinator", "reviewer"]
    reasons: list[str]
    scores: dict[str, float]
    model: str = MODEL_LABEL


@tool(effect=True)
def apply_decision(
    post: dict[str, Any], status: str, decided_by: str, reasons: list[str], scores: dict[str, float]
) -> str:
    """Publish or block the post (its one row in `posts`).

    Args:
        post: The post.
        status: published or blocked.
        decided_by: coordinator or reviewer.
        reasons: Why.
        scores: Each policy's score.
    """
    tables.record(
        post["post_id"], post["author"], post["text"], status, decided_by, reasons, scores
    )
    return status


class ModerationDesk(AgentBase[Post, Moderated]):
    def __init__(self, hang: str | None = None, branch_timeout: float = BRANCH_TIMEOUT) -> None:
        if hang is not None and hang not in POLICIES:
            raise ValueError(f"unknown policy {hang!r}; policies are {', '.join(POLICIES)}")
        self.policies = Parallel(
            "policies",
            [policy_check(p, hang=p == hang) for p in POLICIES],
            min_success=4,
            branch_timeout=branch_timeout,
            merge=coordinator(),
            description="Every policy check at once; the coordinator decides.",
        )
        self.review = HumanApproval(
            "review_post",
            prompt="Publish this post?",
            input_type=ReviewCase,
            assignee="trust_and_safety",
            deadline=REVIEW_DEADLINE,
            on_timeout="reject",
        )
        self._setup(
            "content_moderation",
            input_type=Post,
            output_type=Moderated,
            description="Moderates one post: allow, block, or a person decides.",
        )

    async def run(self, post: Post, ctx: RunContext) -> Moderated:
        checked = await ctx.call(self.policies, post)
        decision = ModerationDecision.model_validate(checked.value)
        ctx.emit("moderation.decision", action=decision.action, reasons=decision.reasons)
        status: Literal["published", "blocked"] = "published"
        decided_by: Literal["coordinator", "reviewer"] = "coordinator"
        reasons = decision.reasons
        if decision.action == "block":
            status = "blocked"
        elif decision.action == "escalate":
            decided_by = "reviewer"
            case = ReviewCase(post=post, reasons=decision.reasons, scores=decision.scores)
            try:
                await ctx.call(self.review, case)
            except RejectedError as e:
                status, reasons = "blocked", [*reasons, f"reviewer: {e.comment}"]
        args = {"post": post.model_dump(), "status": status, "decided_by": decided_by}
        await ctx.use(apply_decision, {**args, "reasons": reasons, "scores": decision.scores})
        return Moderated(
            post_id=post.post_id,
            status=status,
            decided_by=decided_by,
            reasons=reasons,
            scores=decision.scores,
        )


def build_flow(hang: str | None = None, branch_timeout: float = BRANCH_TIMEOUT) -> ModerationDesk:
    """`hang` names a policy check that never answers, to show the per-branch timeout."""
    return ModerationDesk(hang, branch_timeout)


flow = build_flow()


def post_for(text: str, author: str = "anonymous") -> dict[str, str]:
    digest = hashlib.sha256(f"{author}\n{text}".encode()).hexdigest()[:8].upper()
    return {"post_id": f"P-{digest}", "author": author, "text": text}


async def moderate(post: dict[str, str], store: str | None = None, **options: Any) -> RunResult:
    async with Runtime(store) as rt:
        return await rt.run(build_flow(**options), post, target=TARGET)


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.content_moderation [TEXT] [--author A] [--hang POLICY]`."""
    parser = argparse.ArgumentParser(prog="python -m examples.content_moderation")
    parser.add_argument("text", nargs="?", default=SAMPLE_TEXT)
    parser.add_argument("--author", default="anonymous")
    parser.add_argument("--hang", choices=POLICIES, help="make this policy check never answer")
    parser.add_argument("--branch-timeout", type=float, default=BRANCH_TIMEOUT)
    parser.add_argument("--store", help="store URL (default: $PODIUM_STORE or ./.podium/)")
    args = parser.parse_args(argv)
    post = post_for(args.text, args.author)
    result = asyncio.run(
        moderate(post, args.store, hang=args.hang, branch_timeout=args.branch_timeout)
    )
    store = args.store or default_store_url()
    if result.ok:
        print(json.dumps(result.to_dict()["output"], indent=2))
    elif result.status == "waiting":
        print(f"escalated, waiting: {result.error}")
        if isinstance(result.exception, Suspended) and isinstance(result.exception.payload, dict):
            for reason in result.exception.payload["proposed"]["reasons"]:
                print(f"  because:    {reason}")
        print(f"  see it:     podium inbox --store {store}")
        print(f"  publish:    podium approve {result.run_id} --store {store}")
        print(f"  block:      podium reject {result.run_id} --comment 'why' --store {store}")
    else:
        print(f"error: {result.error}", file=sys.stderr)
    print(f"model: {MODEL_LABEL}")
    print(f"run {result.run_id} {result.status}")
    print(f"store: {store}   posts db: {tables.db_path()}")
    return 0 if result.status in ("completed", "waiting") else 1


if __name__ == "__main__":
    raise SystemExit(main())
