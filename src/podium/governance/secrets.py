"""Secret detectors: the shapes of API keys, tokens and private keys, found in any text.

A secret never has a legitimate reader among the things podium stores or prints (journal,
events, traces, dead letters, CLI output), so these run on every stored value whatever the
run's configuration, and must cost next to nothing on text that holds none: one cheap
literal pre-check (`might_hold_secret`), then one combined regular expression.

The shapes (`SECRET_SHAPES`, each a `detail` name of the finding):

- `anthropic_key`  `sk-ant-...`
- `openai_key`     `sk-...`, `sk-proj-...`, `sk-svcacct-...` (20+ key characters)
- `aws_access_key` `AKIA...` / `ASIA...` (16 upper-case letters and digits)
- `github_token`   `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` (36+), `github_pat_...`
- `slack_token`    `xoxa-`, `xoxb-`, `xoxp-`, `xoxo-`, `xoxr-`, `xoxs-`
- `google_api_key` `AIza...` (35 more characters)
- `stripe_key`     `sk_live_`, `sk_test_`, `rk_live_`, `rk_test_`
- `bearer_token`   `Bearer <16+ token characters>` (an HTTP Authorization value)
- `private_key`    a PEM `-----BEGIN ... PRIVATE KEY-----` block (to its END line, or to
  the end of the text when cut short)
- `jwt`            three base64url parts, the first two starting `eyJ` (a JSON object)
- `assigned_secret` the value in `password=...`, `api_key: ...`, `secret=...`,
  `token=...` (8+ characters): only the value is replaced, the name stays readable

Every finding is a `Finding(kind="secret", ...)` (see `podium.governance.pii`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

SECRET: Final = "secret"

# name -> (lower-case literals one of which the shape holds, pattern). Where shapes overlap,
# the earlier wins.
SECRET_SHAPES: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "private_key": (
        ("private key",),
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
        r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[\s\S]*)",
    ),
    "anthropic_key": (("sk-ant-",), r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    "stripe_key": (("k_live_", "k_test_"), r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    "openai_key": (("sk-",), r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    "aws_access_key": (("akia", "asia"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "github_token": (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
    ),
    "slack_token": (("xox",), r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "google_api_key": (("aiza",), r"\bAIza[0-9A-Za-z_-]{35}"),
    "jwt": (("eyj",), r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    "bearer_token": (("bearer",), r"\b[Bb]earer\s+[A-Za-z0-9._~+/-]{16,}=*"),
    "assigned_secret": (
        ("pass", "pwd", "secret", "key", "token"),
        r"(?<!<)(?i:\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|token)"
        r"\b[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s\"'<>,;]{8,})",
    ),
}

_SHAPES: Final = tuple(
    (name, hints, re.compile(pattern)) for name, (hints, pattern) in SECRET_SHAPES.items()
)

_HINTS: Final = tuple(dict.fromkeys(h for _, hints, _ in _SHAPES for h in hints))

# The shortest text that can hold any secret shape.
MIN_SECRET_LENGTH: Final = 16


@dataclass(frozen=True, slots=True)
class Span:
    """Where a secret is in a text, and which shape it has."""

    start: int
    end: int
    detail: str


def might_hold_secret(text: str) -> bool:
    """False when `text` certainly holds no secret (the fast path of every stored value):
    a few `in` checks on its lower-case form cost ~1 us on a sentence, where the shapes'
    regular expressions, even combined into one, cost ~20 us."""
    if len(text) < MIN_SECRET_LENGTH:
        return False
    low = text.lower()
    # a plain loop: `any()` over a generator costs twice as much here
    for hint in _HINTS:  # noqa: SIM110
        if hint in low:
            return True
    return False


# The same pieces as bytes, plus what only a secret's field name holds (`credentials`): to
# look at a whole value at once in its JSON form.
_HINT_BYTES: Final = (*(h.encode() for h in _HINTS), b"credential")


def might_hold_secret_json(data: bytes) -> bool:
    """False when a value whose JSON form is `data` certainly holds no secret, neither by
    shape nor under a field named like one: one pass in C over the whole value, where a
    walk visits each part in Python."""
    if len(data) < MIN_SECRET_LENGTH:
        return False
    low = data.lower()
    for hint in _HINT_BYTES:  # noqa: SIM110
        if hint in low:
            return True
    return False


def _candidates(text: str) -> list[tuple[str, re.Pattern[str]]]:
    """The shapes whose literal pieces `text` holds: only their expressions run."""
    low = text.lower()
    return [(name, rx) for name, hints, rx in _SHAPES if any(h in low for h in hints)]


def secret_spans(text: str) -> list[Span]:
    """Every secret in `text`, in order, not overlapping (an earlier shape wins)."""
    if not might_hold_secret(text):
        return []
    found: list[Span] = []
    for name, rx in _candidates(text):
        for m in rx.finditer(text):
            start, end = m.span("value") if name == "assigned_secret" else m.span()
            if name == "assigned_secret" and _looks_like_placeholder(text[start:end]):
                continue
            if not any(start < f.end and f.start < end for f in found):
                found.append(Span(start, end, name))
    found.sort(key=lambda f: f.start)
    return found


def _looks_like_placeholder(value: str) -> bool:
    """`token=<card:1a2b3c>` or `password=********` is already hidden."""
    return value.startswith("<") or set(value) <= {"*", "x", "X", "."}


_SECRET_FIELD: Final = re.compile(
    r"(?i)(?:.*[_-])?(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key"
    r"|auth[_-]?token|token|private[_-]?key|client[_-]?secret|credentials?)"
)
FIELD_MASK: Final = "<secret:field>"


def secret_field(name: str, value: str) -> bool:
    """Whether `value`, held under the field or key `name` (`api_key`, `password`,
    `client_secret`...), is a secret by its name, whatever its shape: `{"api_key": "x9..."}`
    walked value by value would show nothing a shape can recognise."""
    return (
        len(value) >= 8
        and _SECRET_FIELD.fullmatch(name) is not None
        and not _looks_like_placeholder(value)
    )


class Located(Protocol):
    """Where something is in a text: a secret's `Span`, a `podium.governance.pii.Finding`."""

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


L = TypeVar("L", bound=Located)


def replace_spans(text: str, spans: Sequence[L], fn: Callable[[L, str], str]) -> str:
    """`text` with each span (in order, not overlapping) replaced by `fn(span, value)`."""
    if not spans:
        return text
    parts: list[str] = []
    at = 0
    for s in spans:
        parts.append(text[at : s.start])
        parts.append(fn(s, text[s.start : s.end]))
        at = s.end
    parts.append(text[at:])
    return "".join(parts)


def mask_secrets(text: str) -> str:
    """`text` with every secret replaced by `<secret:SHAPE>` (the shape, never the value)."""
    return replace_spans(text, secret_spans(text), _shape_mask)


def _shape_mask(span: Span, _value: str) -> str:
    return f"<secret:{span.detail}>"
