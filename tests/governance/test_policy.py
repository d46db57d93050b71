"""Policy logic alone: grants, constraints, verdicts and malformed policies."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from podium import Grant, Policy, PolicyError, UsageError
from podium.governance.hashing import args_hash
from podium.governance.verdict import Action

PAY = Policy(
    grants=[
        Grant(
            agent="payer",
            tools=["send_money"],
            when={"to": {"in": ["alice", "bob"]}, "amount": {"max": 5000, "min": 1}},
            approval_above={"amount": 1000},
        ),
        Grant(role="mailer", tools=["send_mail"], when={"to": {"domains": ["example.com"]}}),
        Grant(agent="*", tools=["ticket"], when={"id": {"regex": "T-[0-9]{4}"}}),
        Grant(agent="auditor", tools=["send_money"], needs_approval=True),
    ],
    roles={"notifier": ["mailer"]},
)


def verdict(agent: str, tool: str, args: dict[str, Any], roles: tuple[str, ...] = ()) -> Any:
    return PAY.check(agent, roles, tool, args)


def test_args_hash_is_canonical_json_of_tool_and_args() -> None:
    import hashlib
    import json

    text = json.dumps(
        {"tool": "t", "args": {"b": 1, "a": "é"}},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert args_hash("t", {"a": "é", "b": 1}) == hashlib.sha256(text.encode()).hexdigest()
    assert args_hash("t", {"a": 1}) != args_hash("t", {"a": 2}) != args_hash("u", {"a": 2})


def test_deny_by_default() -> None:
    v = verdict("stranger", "send_money", {"to": "alice", "amount": 5})
    assert v.action == Action.DENY and "holds no grant" in v.reason and v.rule == "default"
    assert verdict("payer", "delete_everything", {}).action == Action.DENY
    assert Policy().check("anyone", (), "anything", {}).action == Action.DENY


def test_amount_limits_and_approval_threshold() -> None:
    assert verdict("payer", "send_money", {"to": "alice", "amount": 500}).allowed
    v = verdict("payer", "send_money", {"to": "alice", "amount": 1500})
    assert v.action == Action.APPROVE and "above 1000" in v.reason
    v = verdict("payer", "send_money", {"to": "alice", "amount": 5001})
    assert v.action == Action.DENY and "above the limit 5000" in v.reason
    assert verdict("payer", "send_money", {"to": "alice", "amount": 0.5}).action == Action.DENY


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), "10", True, None, [9999]])
def test_an_amount_that_is_not_a_finite_number_is_denied(amount: Any) -> None:
    v = verdict("payer", "send_money", {"to": "alice", "amount": amount})
    assert v.action == Action.DENY


def test_recipient_allowlist_is_exact() -> None:
    for to in ("mallory", "Alice", "alice ", ["alice", "mallory"], 1):
        assert verdict("payer", "send_money", {"to": to, "amount": 5}).action == Action.DENY
    assert verdict("payer", "send_money", {"to": ["alice", "bob"], "amount": 5}).allowed


def test_allowlist_does_not_confuse_bools_and_numbers() -> None:
    p = Policy(grants=[Grant(agent="a", tools=["t"], when={"n": {"in": [1]}})])
    assert p.check("a", (), "t", {"n": 1}).allowed
    assert p.check("a", (), "t", {"n": True}).action == Action.DENY


@pytest.mark.parametrize(
    ("to", "ok"),
    [
        ("ann@example.com", True),
        ("ann@Pay.Example.COM", True),
        ("https://example.com/a", True),
        ("example.com", True),
        ("ann@example.com.evil.io", False),
        ("ann@notexample.com", False),
        ("https://example.com@evil.io/", False),
        ("https://evil.io\\@example.com", False),
        ("ann@evil.io@example.com", False),
        ("javascript://example.com", False),
        ("ann @example.com", False),
        ("", False),
    ],
)
def test_domain_allowlist(to: str, ok: bool) -> None:
    v = verdict("notifier", "send_mail", {"to": to})
    assert v.allowed is ok, v


def test_roles_from_the_agent_and_from_the_policy() -> None:
    assert verdict("anyone", "send_mail", {"to": "a@example.com"}, ("mailer",)).allowed
    assert verdict("notifier", "send_mail", {"to": "a@example.com"}).allowed
    assert verdict("anyone", "send_mail", {"to": "a@example.com"}).action == Action.DENY


def test_regex_must_match_in_full() -> None:
    assert verdict("x", "ticket", {"id": "T-1234"}).allowed
    for bad in ("T-12345", "xT-1234", "T-1234\n", 1234):
        assert verdict("x", "ticket", {"id": bad}).action == Action.DENY


def test_grants_add_up_the_most_permissive_wins() -> None:
    # auditor may send money, to anyone, but always with a person's approval
    v = verdict("auditor", "send_money", {"to": "mallory", "amount": 1})
    assert v.action == Action.APPROVE and v.rule == "grants[3]"


def test_path_roots_refuse_dotdot_and_symlink_escapes(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("x")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    os.symlink(tmp_path, root / "up")
    p = Policy(grants=[Grant(agent="r", tools=["read"], when={"path": {"root": str(root)}})])

    def ok(path: str) -> bool:
        return p.check("r", (), "read", {"path": path}).allowed

    assert ok(str(root / "sub" / "a.txt")) and ok(str(root))
    assert not ok(str(root / ".." / "secret.txt"))
    assert not ok(str(root / "sub" / ".." / ".." / "secret.txt"))
    assert not ok(str(root / "link.txt"))
    assert not ok(str(root / "up" / "secret.txt"))
    assert not ok(str(tmp_path / "data2" / "x"))  # a sibling that shares the prefix
    assert not ok("/etc/passwd") and not ok("a\0b")


def test_nested_arguments_by_dotted_name() -> None:
    p = Policy(grants=[Grant(agent="a", tools=["t"], when={"payee.iban": {"regex": "DE[0-9]+"}})])
    assert p.check("a", (), "t", {"payee": {"iban": "DE123"}}).allowed
    assert p.check("a", (), "t", {"payee": {"iban": "FR1"}}).action == Action.DENY
    assert "missing" in p.check("a", (), "t", {"payee": {}}).reason


def test_a_policy_round_trips_through_its_mapping_form() -> None:
    again = Policy.from_dict(PAY.to_dict())
    assert again.digest() == PAY.digest()
    assert again.check("payer", (), "send_money", {"to": "bob", "amount": 2000}).action == (
        Action.APPROVE
    )


@pytest.mark.parametrize(
    ("data", "path", "says"),
    [
        (
            {"grants": [{"agent": "a", "tools": ["t"], "when": {"x": {"maxx": 3}}}]},
            "grants[0].when.x.maxx",
            "did you mean `max`",
        ),
        (
            {"grants": [{"agent": "a", "tools": ["t"], "when": {"x": {"regex": "(["}}}]},
            "grants[0].when.x.regex",
            "not a valid regular expression",
        ),
        (
            {"grants": [{"agent": "a", "tools": ["t"], "when": {"x": {"max": -5}}}]},
            "grants[0].when.x.max",
            "must not be negative",
        ),
        (
            {"grants": [{"agent": "a", "tools": ["t"], "when": {"x": {"min": 9, "max": 5}}}]},
            "grants[0].when.x",
            "above max",
        ),
        (
            {"grants": [{"agent": "a", "tools": ["t"], "approval_above": {"x": "lots"}}]},
            "grants[0].approval_above.x",
            "finite number",
        ),
        ({"grants": [{"agent": "a", "tools": []}]}, "grants[0].tools", "non-empty list"),
        ({"grants": [{"agent": "a"}]}, "grants[0].tools", "required"),
        ({"grants": [{"tools": ["t"]}]}, "grants[0]", "exactly one of `agent`"),
        ({"grants": [{"agent": "a", "role": "r", "tools": ["t"]}]}, "grants[0]", "exactly one"),
        (
            {"grants": [{"agent": "a", "tools": ["t"], "needs_aproval": True}]},
            "grants[0].needs_aproval",
            "did you mean `needs_approval`",
        ),
        (
            {"grants": [{"agent": "a", "tools": ["t"], "when": {"to": {"domains": ["a b"]}}}]},
            "grants[0].when.to.domains[0]",
            "not a domain",
        ),
        (
            {"grants": [{"agent": "a", "tools": ["t"], "approval_ttl": 0}]},
            "grants[0].approval_ttl",
            "positive",
        ),
        ({"grant": []}, "grant", "did you mean `grants`"),
        ({"grants": {"agent": "a"}}, "grants", "list of grants"),
        ({"roles": {"a": "not-a-list-but-ok"}, "grants": [1]}, "grants[0]", "mapping"),
        ([1, 2], "(top level)", "mapping"),
    ],
)
def test_a_malformed_policy_names_the_field(data: Any, path: str, says: str) -> None:
    with pytest.raises(PolicyError) as e:
        Policy.from_dict(data)
    assert f"policy {path}:" in str(e.value) and says in str(e.value)


def test_a_grant_in_code_is_checked_too() -> None:
    with pytest.raises(PolicyError, match="unknown constraint"):
        Grant(agent="a", tools=["t"], when={"x": {"below": 3}})
    with pytest.raises(PolicyError, match="must be a Grant"):
        Policy(grants=[{"agent": "a"}])  # type: ignore[list-item]


def test_unknown_tools_and_agents_are_reported() -> None:
    found = PAY.unknown_names(["send_money", "send_mail"], ["payer", "auditr"])
    messages = [m for _, m in found]
    assert any("no tool named 'ticket'" in m for m in messages)
    assert any("no agent named 'auditor'" in m and "auditr" in m for m in messages)


def test_a_policy_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "policies:\n  grants:\n"
        "    - {agent: payer, tools: [send_money], when: {amount: {max: 5}}}\n"
    )
    (tmp_path / "p.json").write_text('{"grants": [{"role": "r", "tools": ["t"]}]}')
    p = Policy.of(tmp_path / "p.yaml")
    assert p.check("payer", (), "send_money", {"amount": 5}).allowed
    assert Policy.of(str(tmp_path / "p.json")).check("x", ("r",), "t", {}).allowed
    (tmp_path / "bad.yaml").write_text("grants:\n  - {agent: a, tools: [t], when: {n: {max: x}}}\n")
    with pytest.raises(PolicyError, match=r"grants\[0\]\.when\.n\.max: must be a finite number"):
        Policy.load(tmp_path / "bad.yaml")
    with pytest.raises(UsageError, match="cannot read policy file"):
        Policy.load(tmp_path / "missing.yaml")
