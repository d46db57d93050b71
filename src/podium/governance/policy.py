"""Least privilege: which agent may call which tool, with which arguments.

    policy = Policy(
        grants=[
            Grant(agent="billing", tools=["refund"], when={"amount": {"max": 500}},
                  approval_above={"amount": 100}),
            Grant(role="reader", tools=["search", "read_file"],
                  when={"path": {"root": "./data"}}),
        ],
        roles={"billing": ["reader"]},
    )
    policy.check("billing", (), "refund", {"amount": 250})   # Verdict(APPROVE, ...)

Deny by default: a tool call is allowed only when a grant names the calling agent (or one of
its roles, or `"*"`), names the tool, and every constraint of its `when` holds. Grants add
up, as permissions do: the call is allowed without a person if any matching grant allows it
so; if the grants that match all ask for a person (`needs_approval`, or an amount above
`approval_above`), the verdict is APPROVE; if none matches, DENY, naming what failed.

Constraints on one argument (a dotted name reaches into a nested mapping, `payee.iban`):

- `max`, `min`: a number (never a bool, NaN or infinity) within the limits;
- `in`: one of the listed values (an allowlist: recipients, currencies);
- `domains`: an e-mail address, a URL or a host whose host is a listed domain or one of its
  subdomains (`example.com` allows `pay.example.com`, not `example.com.evil.io`);
- `root`: a path that, resolved (symlinks followed, `..` applied), lies under one of the
  listed folders;
- `regex`: a string the regular expression matches in full.

A list argument must satisfy the constraint with every element. The logic is pure: this
module reads no clock and no store, so the same policy gives the same verdict in every
process (a resumed run's denials replay the same).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any
from urllib.parse import urlsplit

from podium.core.datafile import read_table
from podium.errors import PolicyError
from podium.governance.verdict import ALLOW, Action, Verdict

Path = tuple[str | int, ...]

CONSTRAINTS = ("max", "min", "in", "domains", "root", "regex")
GRANT_FIELDS = (
    "agent",
    "role",
    "tools",
    "when",
    "needs_approval",
    "approval_above",
    "approval_ttl",
)
POLICY_FIELDS = ("grants", "roles", "approval_ttl")
ANY = "*"
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def _fail(path: Path, message: str) -> PolicyError:
    return PolicyError(path, message)


def _close(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _limit(path: Path, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, f"must be a finite number, got {value!r}")
    if value < 0:
        raise _fail(path, f"must not be negative, got {value!r}: limits are amounts, 0 or more")
    return float(value)


@dataclass(frozen=True, slots=True)
class Constraint:
    """What one argument must satisfy; built (and checked) once, applied on every call."""

    arg: str
    max: float | None = None
    min: float | None = None
    one_of: tuple[Any, ...] | None = None
    domains: tuple[str, ...] | None = None
    roots: tuple[str, ...] | None = None
    regex: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, arg: str, spec: Any, path: Path) -> Constraint:
        if not isinstance(spec, Mapping) or not spec:
            raise _fail(path, f"must be a mapping of constraints ({', '.join(CONSTRAINTS)})")
        for key in spec:
            if key not in CONSTRAINTS:
                raise _fail(
                    (*path, str(key)),
                    f"unknown constraint{_close(str(key), CONSTRAINTS)}; "
                    f"constraints are {', '.join(CONSTRAINTS)}",
                )
        hi = None if "max" not in spec else _limit((*path, "max"), spec["max"])
        lo = None if "min" not in spec else _limit((*path, "min"), spec["min"])
        if hi is not None and lo is not None and lo > hi:
            raise _fail(path, f"min {lo:g} is above max {hi:g}: no value could pass")
        return cls(
            arg,
            hi,
            lo,
            _values(spec, (*path, "in")),
            _domains(spec, (*path, "domains")),
            _roots(spec, (*path, "root")),
            _regex(spec, (*path, "regex")),
        )

    def violation(self, args: Mapping[str, Any]) -> str | None:
        """Why `args` break this constraint, or None when they keep it."""
        found, value = _lookup(args, self.arg)
        if not found:
            return f"argument {self.arg!r} is missing"
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            why = self._one(v)
            if why is not None:
                return f"argument {self.arg!r}: {why}"
        return None

    def _one(self, v: Any) -> str | None:
        if self.max is not None or self.min is not None:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                return f"{_short(v)} is not a finite number"
            if self.max is not None and v > self.max:
                return f"{v:g} is above the limit {self.max:g}"
            if self.min is not None and v < self.min:
                return f"{v:g} is below the minimum {self.min:g}"
        if self.one_of is not None and not any(_same(v, x) for x in self.one_of):
            return f"{_short(v)} is not one of the allowed values"
        if self.domains is not None:
            host = host_of(v)
            if host is None:
                return f"{_short(v)} is not an e-mail address, URL or host name"
            if not any(host == d or host.endswith("." + d) for d in self.domains):
                return f"domain {host!r} is not allowed"
        if self.roots is not None:
            where = resolved_path(v)
            if where is None:
                return f"{_short(v)} is not a path"
            if not any(
                where == r or where.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots
            ):
                return f"path {_short(v)} resolves outside the allowed folders"
        if self.regex is not None and (not isinstance(v, str) or not self.regex.fullmatch(v)):
            return f"{_short(v)} does not match the pattern {self.regex.pattern!r}"
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.max is not None:
            out["max"] = self.max
        if self.min is not None:
            out["min"] = self.min
        if self.one_of is not None:
            out["in"] = list(self.one_of)
        if self.domains is not None:
            out["domains"] = list(self.domains)
        if self.roots is not None:
            out["root"] = list(self.roots)
        if self.regex is not None:
            out["regex"] = self.regex.pattern
        return out


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _same(a: Any, b: Any) -> bool:
    """Equal, and both bools or neither (`True == 1` in Python; not in an allowlist)."""
    return isinstance(a, bool) == isinstance(b, bool) and type(a) is not dict and a == b


def _lookup(args: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    value: Any = args
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _as_list(spec: Mapping[str, Any], key: str, path: Path) -> list[Any] | None:
    if key not in spec:
        return None
    value = spec[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise _fail(path, f"must be a non-empty list, got {value!r}")
    return list(value)


def _values(spec: Mapping[str, Any], path: Path) -> tuple[Any, ...] | None:
    values = _as_list(spec, "in", path)
    if values is None:
        return None
    for i, v in enumerate(values):
        if not isinstance(v, str | int | float | bool) and v is not None:
            raise _fail((*path, i), f"must be a plain value (text, number, bool), got {v!r}")
    return tuple(values)


def _domains(spec: Mapping[str, Any], path: Path) -> tuple[str, ...] | None:
    values = _as_list(spec, "domains", path)
    if values is None:
        return None
    out = []
    for i, d in enumerate(values):
        host = d.strip().lower().rstrip(".") if isinstance(d, str) else ""
        if not _HOST.fullmatch(host):
            raise _fail((*path, i), f"{d!r} is not a domain name (like example.com)")
        out.append(host)
    return tuple(out)


def _roots(spec: Mapping[str, Any], path: Path) -> tuple[str, ...] | None:
    values = _as_list(spec, "root", path)
    if values is None:
        return None
    out = []
    for i, r in enumerate(values):
        if not isinstance(r, str) or not r.strip() or "\0" in r:
            raise _fail((*path, i), f"{r!r} is not a folder path")
        out.append(os.path.realpath(r))
    return tuple(out)


def _regex(spec: Mapping[str, Any], path: Path) -> re.Pattern[str] | None:
    if "regex" not in spec:
        return None
    pattern = spec["regex"]
    if not isinstance(pattern, str):
        raise _fail(path, f"must be a regular expression as text, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise _fail(path, f"{pattern!r} is not a valid regular expression: {e}") from None


def host_of(value: Any) -> str | None:
    """The host an e-mail address, URL or bare host name names, lower case; None when the
    value is none of these, or is ambiguous (a backslash, spaces, two `@` in an address)."""
    if not isinstance(value, str) or not value or any(c in value for c in "\\ \t\r\n\0"):
        return None
    if "://" in value:
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:
            return None
        if parts.scheme.lower() not in ("http", "https") or not host:
            return None
    elif "@" in value:
        local, _, host = value.rpartition("@")
        if not local or "@" in local:
            return None
    else:
        host = value
    host = host.lower().rstrip(".")
    return host if _HOST.fullmatch(host) else None


def resolved_path(value: Any) -> str | None:
    """`value` as an absolute path with symlinks followed and `..` applied; None when it is
    not a path."""
    if not isinstance(value, str) or not value or "\0" in value:
        return None
    return os.path.realpath(value)


def _names(value: Any, path: Path, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise _fail(path, f"must be a non-empty list of {what} names")
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            raise _fail((*path, i), f"must be a {what} name, got {v!r}")
    return tuple(value)


def _ttl(value: Any, path: Path) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, f"must be a number of seconds, got {value!r}")
    if value <= 0:
        raise _fail(path, f"must be positive (seconds), got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Grant:
    """Permission for one agent (`agent`, or `"*"` for every agent) or one role (`role`) to
    call `tools`, when every constraint in `when` holds (argument name -> constraints).

    `needs_approval` asks a person for every such call; `approval_above` (argument name ->
    amount) asks only when an argument is above its amount. `approval_ttl` (seconds) is how
    long a person's approval stays good (default: the policy's, else for ever)."""

    tools: Sequence[str]
    agent: str | None = None
    role: str | None = None
    when: Mapping[str, Any] = field(default_factory=dict)
    needs_approval: bool = False
    approval_above: Mapping[str, float] = field(default_factory=dict)
    approval_ttl: float | None = None
    _at: Path = field(default=("grant",), repr=False, compare=False)
    _constraints: tuple[Constraint, ...] = field(default=(), repr=False, compare=False)
    _above: tuple[tuple[str, float], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check(self._at)

    def _check(self, path: Path) -> None:
        if (self.agent is None) == (self.role is None):
            raise _fail(path, "give exactly one of `agent` (a name, or '*') or `role`")
        who, what = ("agent", self.agent) if self.agent is not None else ("role", self.role)
        if not isinstance(what, str) or not what.strip():
            raise _fail((*path, who), f"must be a name, got {what!r}")
        set_ = object.__setattr__
        set_(self, "tools", _names(self.tools, (*path, "tools"), "tool"))
        if not isinstance(self.when, Mapping):
            raise _fail((*path, "when"), "must map argument names to constraints")
        set_(
            self,
            "_constraints",
            tuple(
                Constraint.parse(str(a), s, (*path, "when", str(a))) for a, s in self.when.items()
            ),
        )
        if not isinstance(self.needs_approval, bool):
            raise _fail(
                (*path, "needs_approval"), f"must be true or false, got {self.needs_approval!r}"
            )
        if not isinstance(self.approval_above, Mapping):
            raise _fail((*path, "approval_above"), "must map argument names to amounts")
        set_(
            self,
            "_above",
            tuple(
                (str(a), _limit((*path, "approval_above", str(a)), v))
                for a, v in self.approval_above.items()
            ),
        )
        set_(self, "approval_ttl", _ttl(self.approval_ttl, (*path, "approval_ttl")))

    @classmethod
    def from_dict(cls, data: Any, path: Path = ("grants", 0)) -> Grant:
        if not isinstance(data, Mapping):
            raise _fail(path, f"a grant must be a mapping ({', '.join(GRANT_FIELDS)})")
        for key in data:
            if key not in GRANT_FIELDS:
                raise _fail(
                    (*path, str(key)),
                    f"unknown field{_close(str(key), GRANT_FIELDS)}; a grant has "
                    f"{', '.join(GRANT_FIELDS)}",
                )
        if "tools" not in data:
            raise _fail((*path, "tools"), "required field is missing: which tools it grants")
        given = {str(k): v for k, v in data.items() if v is not None}
        return cls(**given, _at=path)

    def covers(self, agent: str, roles: Collection[str], tool: str) -> bool:
        if tool not in self.tools:
            return False
        if self.agent is not None:
            return self.agent == ANY or self.agent == agent
        return self.role is not None and self.role in roles

    def judge(self, args: Mapping[str, Any], rule: str) -> Verdict:
        """This grant's verdict on a call it covers."""
        for c in self._constraints:
            why = c.violation(args)
            if why is not None:
                return Verdict(Action.DENY, why, rule)
        if self.needs_approval:
            return Verdict(Action.APPROVE, "this tool needs a person's approval", rule)
        for arg, amount in self._above:
            found, value = _lookup(args, arg)
            if not found or not isinstance(value, int | float) or isinstance(value, bool):
                return Verdict(Action.APPROVE, f"argument {arg!r} is not a plain amount", rule)
            if not math.isfinite(value) or value > amount:
                return Verdict(
                    Action.APPROVE, f"argument {arg!r} = {value:g} is above {amount:g}", rule
                )
        return Verdict(Action.ALLOW, "", rule)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = (
            {"agent": self.agent} if self.agent is not None else {"role": self.role}
        )
        out["tools"] = list(self.tools)
        if self._constraints:
            out["when"] = {c.arg: c.to_dict() for c in self._constraints}
        if self.needs_approval:
            out["needs_approval"] = True
        if self._above:
            out["approval_above"] = dict(self._above)
        if self.approval_ttl is not None:
            out["approval_ttl"] = self.approval_ttl
        return out


@dataclass(frozen=True, slots=True)
class Policy:
    """Deny-by-default grants, and the roles each agent holds (`roles`: agent name -> role
    names, beside the roles an agent declares itself with `roles=`). `approval_ttl` is how
    long approvals stay good unless a grant says otherwise (seconds; none: until used)."""

    grants: Sequence[Grant] = ()
    roles: Mapping[str, Sequence[str]] = field(default_factory=dict)
    approval_ttl: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.grants, list | tuple):
            raise _fail(("grants",), "must be a list of grants")
        for i, g in enumerate(self.grants):
            if not isinstance(g, Grant):
                raise _fail(("grants", i), f"must be a Grant, got {g!r}")
        object.__setattr__(self, "grants", tuple(self.grants))
        if not isinstance(self.roles, Mapping):
            raise _fail(("roles",), "must map agent names to lists of role names")
        roles = {str(a): _names(r, ("roles", str(a)), "role") for a, r in self.roles.items()}
        object.__setattr__(self, "roles", roles)
        object.__setattr__(self, "approval_ttl", _ttl(self.approval_ttl, ("approval_ttl",)))

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        """A policy from its mapping form (a workflow file's `policies:`): `grants`, a list of
        grant mappings; `roles`, agent name -> role names; `approval_ttl`. A `PolicyError`
        names the field that is wrong."""
        if isinstance(data, Policy):
            return data
        if not isinstance(data, Mapping):
            raise _fail((), f"a policy must be a mapping with `grants` (got {type(data).__name__})")
        for key in data:
            if key not in POLICY_FIELDS:
                raise _fail(
                    (str(key),),
                    f"unknown field{_close(str(key), POLICY_FIELDS)}; a policy has "
                    f"{', '.join(POLICY_FIELDS)}",
                )
        grants = data.get("grants", [])
        if not isinstance(grants, list):
            raise _fail(("grants",), "must be a list of grants")
        return cls(
            [Grant.from_dict(g, ("grants", i)) for i, g in enumerate(grants)],
            data.get("roles") or {},
            data.get("approval_ttl"),
        )

    @classmethod
    def load(cls, path: str | PathLike[str]) -> Policy:
        """A policy from a YAML or JSON file: its mapping, or a file whose only key is
        `policies:` holding it (so a workflow's block can be kept in a file of its own)."""
        return cls.from_dict(read_table(os.fspath(path), "policy file", "policies"))

    @classmethod
    def of(cls, value: Policy | Mapping[str, Any] | str | PathLike[str]) -> Policy:
        """A `Policy` as given, from its mapping form, or from a file path."""
        if isinstance(value, Policy):
            return value
        if isinstance(value, str | PathLike):
            return cls.load(value)
        return cls.from_dict(value)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"grants": [g.to_dict() for g in self.grants]}
        if self.roles:
            out["roles"] = {a: list(r) for a, r in self.roles.items()}
        if self.approval_ttl is not None:
            out["approval_ttl"] = self.approval_ttl
        return out

    def digest(self) -> str:
        """sha256 of the canonical JSON form: which policy a run was checked against."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def check(
        self, agent: str, roles: Iterable[str], tool: str, args: Mapping[str, Any] | None
    ) -> Verdict:
        """The verdict on `agent` (holding `roles`) calling `tool` with `args`."""
        held = {*roles, *self.roles.get(agent, ())}
        args = {} if args is None else args
        verdicts = [
            g.judge(args, f"grants[{i}]")
            for i, g in enumerate(self.grants)
            if g.covers(agent, held, tool)
        ]
        if not verdicts:
            return Verdict(
                Action.DENY, f"agent {agent!r} holds no grant for tool {tool!r}", "default"
            )
        for action in (Action.ALLOW, Action.APPROVE):
            for v in verdicts:
                if v.action == action:
                    return v if action != Action.ALLOW else Verdict(Action.ALLOW, "", v.rule)
        return verdicts[0]

    def approval_ttl_for(self, verdict: Verdict) -> float | None:
        """How long an approval asked for by `verdict` stays good (the grant's, else ours)."""
        index = verdict.rule.removeprefix("grants[").removesuffix("]")
        if verdict.rule.startswith("grants[") and index.isdigit() and int(index) < len(self.grants):
            ttl = self.grants[int(index)].approval_ttl
            if ttl is not None:
                return ttl
        return self.approval_ttl

    def unknown_names(
        self, tools: Iterable[str], agents: Iterable[str] | None = None
    ) -> list[tuple[Path, str]]:
        """Grants that name a tool (or agent) nobody has: `(path, message)` for each, for
        `podium validate` when the workflow's tools (and agents) are known."""
        known_tools = set(tools)
        out: list[tuple[Path, str]] = []
        known_agents = None if agents is None else set(agents)
        for i, g in enumerate(self.grants):
            for j, t in enumerate(g.tools):
                if t not in known_tools:
                    hint = _close(t, known_tools)
                    out.append(
                        (("grants", i, "tools", j), f"no tool named {t!r} in this workflow{hint}")
                    )
            if known_agents is not None and g.agent not in (None, ANY, *known_agents):
                hint = _close(str(g.agent), known_agents)
                out.append((("grants", i, "agent"), f"no agent named {g.agent!r}{hint}"))
        return out


def policy_problems(data: Any) -> list[PolicyError]:
    """Every problem of a policy's mapping form, one per grant (and one for the rest), so
    `podium validate` lists them all at once; empty when it is well formed."""
    try:
        Policy.from_dict(data)
        return []
    except PolicyError as first:
        grants = data.get("grants") if isinstance(data, Mapping) else None
        if not isinstance(grants, list):
            return [first]
        out: list[PolicyError] = []
        for i, g in enumerate(grants):
            out += _grant_problems(g, ("grants", i))
        try:
            Policy.from_dict({**data, "grants": []})
        except PolicyError as e:
            out.append(e)
        return out or [first]


def _grant_problems(grant: Any, path: tuple[str | int, ...]) -> list[PolicyError]:
    """Every problem of one grant: its fields apart from `when`, then each constraint of
    each argument alone, so that a typo does not hide a negative limit beside it."""
    try:
        Grant.from_dict(grant, path)
        return []
    except PolicyError as first:
        if not isinstance(grant, Mapping):
            return [first]
        rest = {k: v for k, v in grant.items() if k != "when"}
        pieces: list[Any] = [rest]
        when = grant.get("when")
        if isinstance(when, Mapping):
            for arg, cons in when.items():
                if isinstance(cons, Mapping) and cons:
                    pieces += [{**rest, "when": {arg: {k: v}}} for k, v in cons.items()]
                else:
                    pieces.append({**rest, "when": {arg: cons}})
        elif when is not None:
            pieces.append(grant)
        out: list[PolicyError] = []
        seen: set[str] = set()
        for piece in pieces:
            try:
                Grant.from_dict(piece, path)
            except PolicyError as e:
                if str(e) not in seen:
                    seen.add(str(e))
                    out.append(e)
        return out or [first]


__all__ = [
    "ALLOW",
    "CONSTRAINTS",
    "Constraint",
    "Grant",
    "Policy",
    "host_of",
    "policy_problems",
    "resolved_path",
]
