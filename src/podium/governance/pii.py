"""PII detectors, and the one walk that rewrites every string inside a value.

The kinds (`PII_KINDS`, plus `SECRET` from `podium.governance.secrets`):

- `card`         payment card numbers: 13-19 digits, plain or grouped by spaces or dashes
                 (first group of 4), an issuer prefix (Visa, Mastercard, Amex, Discover,
                 Diners, JCB, UnionPay) and a valid Luhn check digit
- `email`        addresses `local@domain.tld`
- `phone`        international numbers written `+` and 8-15 digits (E.164, with the usual
                 spaces, dashes, dots and brackets); national formats written with
                 separators: North American `(415) 555-0132` / `415-555-0132`, UK
                 `020 7946 0958` / `07911 123456`, French `06 12 34 56 78`. A bare run of
                 digits is never taken for a phone number: it is as likely an order id.
- `iban`         International Bank Account Numbers, plain or in groups of four, with the
                 country's length where known and a valid mod-97 check
- `national_id`  by pattern: US Social Security numbers written `123-45-6789` (not the
                 ranges never issued), UK National Insurance numbers `QQ 12 34 56 C`,
                 French NIR (15 digits, mod-97 key checked), Spanish DNI (8 digits and
                 its check letter)
- `secret`       API keys, tokens, private keys (see `podium.governance.secrets`)

What a pattern cannot see it does not find: names, street addresses, dates of birth.
Presidio (`pip install podium[pii]`, with a spaCy model) finds those: `presidio_findings`
uses it when it is importable, and returns nothing otherwise.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from podium.governance.secrets import (
    FIELD_MASK,
    SECRET,
    replace_spans,
    secret_field,
    secret_spans,
)

CARD: Final = "card"
EMAIL: Final = "email"
PHONE: Final = "phone"
IBAN: Final = "iban"
NATIONAL_ID: Final = "national_id"
PII_KINDS: Final = (CARD, EMAIL, PHONE, IBAN, NATIONAL_ID)
KINDS: Final = (*PII_KINDS, SECRET)


@dataclass(frozen=True, slots=True)
class Finding:
    """One sensitive value found in a text: its kind, where it is, and which shape (a
    card's issuer, a key's provider, an id's country) - never a copy of the value."""

    kind: str
    start: int
    end: int
    detail: str = ""


# -- checks ---------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    """The Luhn check of a card number (digits only)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Lengths of IBANs by country (ISO 13616 registry, the common ones).
IBAN_LENGTHS: Final[dict[str, int]] = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21,
    "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27,
    "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26,
    "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TR": 26,
}  # fmt: skip


def iban_ok(iban: str) -> bool:
    """The mod-97 check of an IBAN (spaces allowed), and its country's length if known."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    want = IBAN_LENGTHS.get(compact[:2])
    if want is not None and len(compact) != want:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def _card_issuer(digits: str) -> str | None:
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return "mastercard"
    if two in (34, 37) and n == 15:
        return "amex"
    if (four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649) and n in (16, 19):
        return "discover"
    if (two in (36, 38) or 300 <= int(digits[:3]) <= 305) and n in (14, 16):
        return "diners"
    if 3528 <= four <= 3589 and n in (16, 19):
        return "jcb"
    if two == 62 and 16 <= n <= 19:
        return "unionpay"
    return None


# -- detectors ------------------------------------------------------------------------------

_CARD_RE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_EMAIL_RE = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b"
)
_PHONE_RES: Final = (
    ("e164", re.compile(r"(?<![\w+])\+[1-9](?:[ .-]?\(?\d+\)?){2,7}(?![\w])")),
    (
        "nanp",
        re.compile(r"(?<![\w(+-])(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[-. ])\d{3}[-. ]\d{4}(?![\w-])"),
    ),
    ("uk", re.compile(r"(?<![\w+-])0(?:7\d{3} \d{6}|[1-3]\d{1,3} \d{3,4} ?\d{3,4})(?![\w-])")),
    ("fr", re.compile(r"(?<![\w+-])0[1-9](?:([ .])\d{2})(?:\1\d{2}){3}(?![\w-])")),
)
_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_SSN_RE = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_NINO_RE = re.compile(
    r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
_NIR_RE = re.compile(
    r"(?<![\w])[12] ?\d{2} ?(?:0[1-9]|1[0-2]) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?![\w])"
)
_DNI_RE = re.compile(r"(?<![\w])\d{8}-?[A-Z](?![\w])")
_DNI_LETTERS: Final = "TRWAGMYFPDXBNJZSQVHLCKE"
_DIGIT = re.compile(r"\d")


def _cards(text: str) -> Iterable[Finding]:
    for m in _CARD_RE.finditer(text):
        raw = m.group()
        seps = set(raw) - set("0123456789")
        if len(seps) > 1:
            continue
        if not seps:
            found = _card_at(raw, m.start())
        else:  # a run of groups may hold more than the card (an amount after it, ...)
            found = _card_in_groups(raw, seps.pop(), m.start())
        if found is not None:
            yield found


def _card_at(digits: str, start: int) -> Finding | None:
    if not 13 <= len(digits) <= 19:
        return None
    issuer = _card_issuer(digits)
    if issuer is None or not luhn_ok(digits):
        return None
    return Finding(CARD, start, start + len(digits), issuer)


def _card_groups(sizes: tuple[int, ...]) -> bool:
    """How cards are printed: fours (the last group may be shorter), or Amex and Diners'
    4-6-5 and 4-6-4."""
    if sizes in ((4, 6, 5), (4, 6, 4)):
        return True
    return all(n == 4 for n in sizes[:-1]) and 1 <= sizes[-1] <= 4


def _card_in_groups(raw: str, sep: str, start: int) -> Finding | None:
    """The longest run of groups that is a card written in groups (the first of 4 digits)."""
    groups = raw.split(sep)
    offsets = [0]
    for g in groups[:-1]:
        offsets.append(offsets[-1] + len(g) + 1)
    spans = sorted(
        ((i, j) for i in range(len(groups)) for j in range(i + 2, len(groups) + 1)),
        key=lambda ij: ij[0] - ij[1],
    )
    for i, j in spans:
        part = groups[i:j]
        if not _card_groups(tuple(len(g) for g in part)):
            continue
        found = _card_at("".join(part), start + offsets[i])
        if found is not None:
            end = start + offsets[j - 1] + len(groups[j - 1])
            return Finding(CARD, found.start, end, found.detail)
    return None


def _emails(text: str) -> Iterable[Finding]:
    if "@" not in text:
        return
    for m in _EMAIL_RE.finditer(text):
        yield Finding(EMAIL, m.start(), m.end())


def _phones(text: str) -> Iterable[Finding]:
    for detail, rx in _PHONE_RES:
        for m in rx.finditer(text):
            digits = sum(c.isdigit() for c in m.group())
            if detail == "e164" and not 8 <= digits <= 15:
                continue
            yield Finding(PHONE, m.start(), m.end(), detail)


def _ibans(text: str) -> Iterable[Finding]:
    for m in _IBAN_RE.finditer(text):
        raw = m.group()
        want = IBAN_LENGTHS.get(raw[:2])
        if want is None:
            if iban_ok(raw):
                yield Finding(IBAN, m.start(), m.end(), raw[:2])
            continue
        # The pattern may have taken a word after the number: cut at the country's length.
        seen = 0
        for i, ch in enumerate(raw):
            if ch != " ":
                seen += 1
            if seen == want:
                if iban_ok(raw[: i + 1]):
                    yield Finding(IBAN, m.start(), m.start() + i + 1, raw[:2])
                break


def _nir_ok(raw: str) -> bool:
    compact = raw.replace(" ", "")
    body = compact[:13].replace("2A", "19").replace("2B", "18")
    return 97 - int(body) % 97 == int(compact[13:])


def _national_ids(text: str) -> Iterable[Finding]:
    for m in _SSN_RE.finditer(text):
        yield Finding(NATIONAL_ID, m.start(), m.end(), "us_ssn")
    for m in _NINO_RE.finditer(text):
        yield Finding(NATIONAL_ID, m.start(), m.end(), "uk_nino")
    for m in _NIR_RE.finditer(text):
        if _nir_ok(m.group()):
            yield Finding(NATIONAL_ID, m.start(), m.end(), "fr_nir")
    for m in _DNI_RE.finditer(text):
        raw = m.group()
        if _DNI_LETTERS[int(raw[:8]) % 23] == raw[-1]:
            yield Finding(NATIONAL_ID, m.start(), m.end(), "es_dni")


def _secrets(text: str) -> Iterable[Finding]:
    for s in secret_spans(text):
        yield Finding(SECRET, s.start, s.end, s.detail)


_DETECTORS: Final[dict[str, Callable[[str], Iterable[Finding]]]] = {
    SECRET: _secrets,  # first: where findings overlap, the earlier kind wins
    IBAN: _ibans,
    CARD: _cards,
    NATIONAL_ID: _national_ids,
    EMAIL: _emails,
    PHONE: _phones,
}
_NEEDS_DIGITS: Final = frozenset({IBAN, CARD, NATIONAL_ID, PHONE})


def check_kinds(kinds: Iterable[str], where: str) -> frozenset[str]:
    """`kinds` as a set, or a `ValueError` naming the unknown ones and the known."""
    out = frozenset(kinds)
    unknown = out - set(KINDS)
    if unknown:
        raise ValueError(f"{where}: unknown kind(s) {sorted(unknown)}; the kinds are {KINDS}")
    return out


def find_sensitive(text: str, kinds: Iterable[str] = KINDS) -> list[Finding]:
    """Every PII value and secret of the given kinds in `text`, in order, not overlapping."""
    wanted = kinds if isinstance(kinds, frozenset) else frozenset(kinds)
    has_digits = _DIGIT.search(text) is not None
    found: list[Finding] = []
    for kind, detect in _DETECTORS.items():
        if kind not in wanted or (kind in _NEEDS_DIGITS and not has_digits):
            continue
        for f in detect(text):
            if not any(f.start < g.end and g.start < f.end for g in found):
                found.append(f)
    found.sort(key=lambda f: f.start)
    return found


def find_pii(text: str, kinds: Iterable[str] = PII_KINDS) -> list[Finding]:
    """The PII in `text` (no secrets unless asked for)."""
    return find_sensitive(text, kinds)


def replace_findings(text: str, findings: list[Finding], fn: Callable[[Finding, str], str]) -> str:
    """`text` with each finding replaced by `fn(finding, value)`."""
    return replace_spans(text, findings, fn)


def mask_sensitive(text: str, kinds: Iterable[str] = KINDS) -> str:
    """`text` with each sensitive value of the given kinds replaced by `<kind>`
    (`<secret:SHAPE>` for a secret): a mask cannot be turned back into the value."""
    return replace_findings(text, find_sensitive(text, kinds), _mask_one)


def _mask_one(f: Finding, _value: str) -> str:
    return f"<secret:{f.detail}>" if f.kind == SECRET else f"<{f.kind}>"


# -- the walk -------------------------------------------------------------------------------


def rewrite(value: Any, fn: Callable[[str], str], *, secret_fields: bool = False) -> Any:
    """`value` with `fn` applied to every string inside it (dict keys and values, lists,
    tuples, sets, dataclasses, pydantic models). What `fn` leaves alone is not copied: an
    unchanged value comes back as the same object. A container met twice (a value that
    shares its parts, as a `ParallelResult` does) is walked once. With `secret_fields`, a
    string under a key or field named like a secret (`api_key`, `password`) is masked
    whatever its shape (for what is stored: a tool handed its key keeps it)."""
    kind = type(value)
    if kind is str:
        return fn(value)
    if value is None or kind is int or kind is float or kind is bool:
        return value
    return _Walk(fn, secret_fields).walk(value)


class _Walk:
    __slots__ = ("fields", "fn", "seen")

    def __init__(self, fn: Callable[[str], str], fields: bool) -> None:
        self.fn = fn
        self.fields = fields
        self.seen: dict[int, tuple[Any, Any]] = {}  # id -> (the value, what it became)

    def walk(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return self.fn(value)
        if value is None or kind is int or kind is float or kind is bool:
            return value
        known = self.seen.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        out = self._container(value, kind)
        self.seen[id(value)] = (value, out)  # holds `value`: its id is not reused meanwhile
        return out

    def field(self, name: Any, value: Any) -> Any:
        """A value under a key or field: a secret by its name (`api_key`) is masked."""
        if self.fields and type(value) is str and type(name) is str and secret_field(name, value):
            return FIELD_MASK
        return self.walk(value)

    def _container(self, value: Any, kind: type) -> Any:
        walk = self.walk
        if kind is dict:
            changed = False
            out: dict[Any, Any] = {}
            for k, v in value.items():
                k2, v2 = walk(k), self.field(k, v)
                changed = changed or k2 is not k or v2 is not v
                out[k2] = v2
            return out if changed else value
        if kind is list or kind is tuple or kind is set or kind is frozenset:
            items = [walk(v) for v in value]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return kind(items)
        return self._object(value)

    def _object(self, value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {}
            for f in dataclasses.fields(value):
                if not f.init:
                    continue
                old = getattr(value, f.name)
                new = self.field(f.name, old)
                if new is not old:
                    changes[f.name] = new
            return dataclasses.replace(value, **changes) if changes else value
        fields = getattr(type(value), "model_fields", None)  # a pydantic model
        if isinstance(fields, dict) and hasattr(value, "model_copy"):
            changes = {}
            for name in fields:
                old = getattr(value, name, None)
                new = self.field(name, old)
                if new is not old:
                    changes[name] = new
            return value.model_copy(update=changes) if changes else value
        return value


def presidio_findings(text: str, language: str = "en") -> list[Finding]:
    """What Presidio's analyzer finds in `text` (names, addresses, ...) as findings of
    kind `presidio:<ENTITY>`; nothing when Presidio or its spaCy model is not installed
    (`pip install podium[pii]` and `python -m spacy download en_core_web_lg`)."""
    engine = _presidio()
    if engine is None:
        return []
    results = engine.analyze(text=text, language=language)
    return [Finding(f"presidio:{r.entity_type}", r.start, r.end, r.entity_type) for r in results]


_PRESIDIO: list[Any] = []


def _presidio() -> Any:
    if not _PRESIDIO:
        try:
            from presidio_analyzer import AnalyzerEngine  # type: ignore[import-not-found]

            _PRESIDIO.append(AnalyzerEngine())
        except Exception:  # not installed, or no spaCy model: patterns only
            _PRESIDIO.append(None)
    return _PRESIDIO[0]
