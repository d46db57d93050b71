"""The five policy checks and the coordinator.

Spam and privacy are deterministic regex scorers (plain `@agent` functions); hate, violence
and self-harm are `LLMAgent`s on `ScriptedModel`s that score a small lexicon, standing in for
classifier models. Each answers a `PolicyVerdict`; the coordinator, an `LLMAgent` too, reads
all of them (and which are missing) and decides.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from podium import LLMAgent, ScriptedModel
from podium.agents.function import FunctionAgent
from podium.core.tools import ToolSpec
from podium.models.base import Message, OutputSchema

POLICIES = ("hate", "violence", "spam", "privacy", "self_harm")
MODEL_LABEL = "scripted (offline: ScriptedModels scoring lexicons)"
BORDERLINE, VIOLATION = 0.4, 0.8


class Post(BaseModel):
    post_id: str
    author: str = "anonymous"
    text: str = Field(min_length=1)


class PolicyVerdict(BaseModel):
    policy: str
    post_id: str
    score: float = Field(ge=0.0, le=1.0)
    label: Literal["ok", "borderline", "violation"]
    evidence: list[str]


class ModerationDecision(BaseModel):
    post_id: str
    action: Literal["allow", "block", "escalate"]
    reasons: list[str]
    scores: dict[str, float]
    missing: dict[str, str]


def verdict(policy: str, post: Post, score: float, evidence: list[str]) -> PolicyVerdict:
    score = round(min(score, 1.0), 2)
    label: Any = (
        "violation" if score >= VIOLATION else "borderline" if score >= BORDERLINE else "ok"
    )
    return PolicyVerdict(
        policy=policy, post_id=post.post_id, score=score, label=label, evidence=evidence
    )


# regex scorers --------------------------------------------------------------------------------

_URL = re.compile(r"https?://\S+", re.I)
_SPAM_PHRASES = re.compile(
    r"\b(buy now|free money|click here|limited offer|act now|100% free)\b", re.I
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")
_PHONE = re.compile(r"(?<!\d)(?:\+?\d{1,2}[ -]?)?\(?\d{3}\)?[ -]\d{3}-\d{4}(?!\d)")
_CARD = re.compile(r"\b(?:\d{4}[ -]?){3}\d{4}\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")


def score_spam(post: Post) -> PolicyVerdict:
    urls, phrases = _URL.findall(post.text), _SPAM_PHRASES.findall(post.text)
    letters = [c for c in post.text if c.isalpha()]
    shouting = len(letters) > 10 and sum(c.isupper() for c in letters) / len(letters) > 0.6
    evidence = [f"{len(urls)} links"] if len(urls) > 1 else []
    evidence += [f"phrase {p.lower()!r}" for p in phrases] + (["shouting"] if shouting else [])
    score = 0.3 * max(0, len(urls) - 1) + 0.35 * len(phrases) + (0.2 if shouting else 0.0)
    return verdict("spam", post, score, evidence)


def score_privacy(post: Post) -> PolicyVerdict:
    found = [
        f"{kind}: {m}"
        for kind, pattern in (("email", _EMAIL), ("phone", _PHONE), ("card", _CARD), ("ssn", _SSN))
        for m in pattern.findall(post.text)
    ]
    score = 0.0 if not found else 0.5 + 0.4 * (len(found) - 1)
    return verdict("privacy", post, score, found)


# lexicon "models" -----------------------------------------------------------------------------

LEXICONS: dict[str, dict[str, float]] = {
    "hate": {
        "subhuman": 0.9,
        "vermin": 0.9,
        "go back to where you came from": 0.85,
        "those people": 0.4,
    },
    "violence": {
        "i will kill": 0.95,
        "kill you": 0.95,
        "shoot up": 0.95,
        "bomb the": 0.9,
        "beat you up": 0.85,
        "punch": 0.5,
        "fight me": 0.5,
    },
    "self_harm": {
        "kill myself": 0.95,
        "end it all": 0.9,
        "want to die": 0.9,
        "hurt myself": 0.85,
        "can't go on": 0.5,
        "hopeless": 0.4,
    },
}


def score_lexicon(policy: str, post: Post) -> PolicyVerdict:
    text = post.text.lower()
    hits = {term: w for term, w in LEXICONS[policy].items() if term in text}
    score = 0.0 if not hits else max(hits.values()) + 0.05 * (len(hits) - 1)
    return verdict(policy, post, score, [f"{t!r}" for t in hits])


def _post_of(messages: Sequence[Message]) -> Any:
    return json.loads(next(m.content for m in reversed(messages) if m.role == "user"))


def policy_check(policy: str, *, hang: bool = False) -> Any:
    """The agent for one policy; `hang` makes it never answer (the branch timeout ends it)."""
    if policy in ("spam", "privacy"):
        scorer = score_spam if policy == "spam" else score_privacy

        async def check(post: Post) -> PolicyVerdict:
            if hang:
                await asyncio.sleep(3600)
            return scorer(post)

        return FunctionAgent(check, name=f"{policy}_check", description=f"{policy} (regex)")

    async def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> dict[str, Any]:
        if hang:
            await asyncio.sleep(3600)
        return score_lexicon(policy, Post.model_validate(_post_of(messages))).model_dump()

    return LLMAgent(
        f"{policy}_check",
        model=ScriptedModel(answer, name=f"scripted-{policy}"),
        instructions=f"Score the post for {policy.replace('_', ' ')} from 0 to 1, with evidence.",
        output_type=PolicyVerdict,
        description=f"{policy} (model)",
    )


# the coordinator ------------------------------------------------------------------------------


def decide(results: dict[str, Any], gaps: dict[str, str]) -> ModerationDecision:
    """Self-harm goes to a person (care, not a silent block); a clear violation is blocked;
    a borderline score or a check that did not finish goes to a person; else allow."""
    verdicts = [PolicyVerdict.model_validate(r) for r in results.values()]
    missing = {name.removesuffix("_check"): why for name, why in gaps.items()}
    scores = {v.policy: v.score for v in verdicts}
    said = {v.policy: f"{v.policy} {v.score:g} ({', '.join(v.evidence)})" for v in verdicts}
    harm = [v for v in verdicts if v.policy == "self_harm" and v.label != "ok"]
    blocked = [said[v.policy] for v in verdicts if v.label == "violation" and not harm]
    doubtful = [said[v.policy] for v in verdicts if v.label == "borderline"]
    doubtful += [f"the {p} check did not finish: {why}" for p, why in missing.items()]
    action: Any
    if harm:
        action, reasons = "escalate", [f"possible self-harm: {said['self_harm']}"]
    elif blocked:
        action, reasons = "block", blocked
    elif doubtful:
        action, reasons = "escalate", doubtful
    else:
        action, reasons = "allow", ["no policy concerns"]
    return ModerationDecision(
        post_id=verdicts[0].post_id, action=action, reasons=reasons, scores=scores, missing=missing
    )


def coordinator() -> LLMAgent:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> dict[str, Any]:
        merged = _post_of(messages)
        return decide(merged["results"], merged["gaps"]).model_dump()

    return LLMAgent(
        "coordinator",
        model=ScriptedModel(answer, name="scripted-coordinator"),
        instructions="You coordinate content moderation. From the policy verdicts decide: "
        "allow, block, or escalate to a person. Escalate self-harm, borderline cases and "
        "anything a check could not assess.",
        output_type=ModerationDecision,
        description="Decides allow / block / escalate from the policy verdicts.",
    )
