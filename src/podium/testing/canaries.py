"""Canaries: realistic, valid, unique sensitive values to seed into a run and look for after.

    for c in canaries(100, seed=7):      # 100 of each kind
        c.kind, c.value                  # "card", "4539 1488 0343 6467"

Every value is one the detectors must find (a card with a valid Luhn digit and an issuer
prefix, an IBAN with valid mod-97 digits, a key of a real provider's shape), and unique
enough that finding its text anywhere means it leaked.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from podium.governance.pii import KINDS, check_kinds


@dataclass(frozen=True, slots=True)
class Canary:
    """One seeded value and its kind (`podium.governance.pii.KINDS`)."""

    kind: str
    value: str


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _card(r: random.Random) -> str:
    prefix, length = r.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("6011", 16)])
    body = prefix + "".join(r.choice(string.digits) for _ in range(length - len(prefix) - 1))
    digits = body + _luhn_digit(body)
    sep = r.choice(["", " ", "-"])
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _iban(r: random.Random) -> str:
    country, length = r.choice([("DE", 22), ("FR", 27), ("GB", 22), ("NL", 18), ("ES", 24)])
    if country in ("GB", "NL"):
        bban = "".join(r.choice(string.ascii_uppercase) for _ in range(4))
        bban += "".join(r.choice(string.digits) for _ in range(length - 8))
    else:
        bban = "".join(r.choice(string.digits) for _ in range(length - 4))
    number = "".join(str(int(c, 36)) for c in bban + country + "00")
    iban = f"{country}{98 - int(number) % 97:02d}{bban}"
    if r.random() < 0.5:
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def _email(r: random.Random) -> str:
    user = "".join(r.choice(string.ascii_lowercase) for _ in range(8))
    return f"{user}.{r.randrange(10**6)}@{r.choice(['example.com', 'mail.example.org'])}"


def _phone(r: random.Random) -> str:
    def d(n: int) -> str:
        return "".join(r.choice(string.digits) for _ in range(n))

    return r.choice(
        [
            f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+1 415 {d(3)} {d(4)}",
            f"+44 7{d(3)} {d(6)}",
            f"({r.randrange(2, 10)}{d(2)}) {d(3)}-{d(4)}",
        ]
    )


def _national_id(r: random.Random) -> str:
    if r.random() < 0.5:
        return f"{r.randrange(100, 666)}-{r.randrange(10, 100)}-{r.randrange(1000, 10000)}"
    letters = "ABCEHJKLMPRSTWXYZ"
    prefix = "ZZ"
    while prefix in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):  # never issued
        prefix = r.choice(letters) + r.choice(letters)
    digits = "".join(r.choice(string.digits) for _ in range(6))
    return f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} A"


def _secret(r: random.Random) -> str:
    def rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(r.choice(alphabet) for _ in range(n))

    return r.choice(
        [
            f"sk-proj-{rand(40)}",
            f"sk-ant-api03-{rand(40)}",
            f"AKIA{rand(16, string.ascii_uppercase + string.digits)}",
            f"ghp_{rand(36)}",
            f"xoxb-{rand(10, string.digits)}-{rand(24)}",
            f"eyJhbGciOiJIUzI1NiJ9.eyJ{rand(24)}.{rand(30)}",
            f"-----BEGIN RSA PRIVATE KEY-----\n{rand(64)}\n-----END RSA PRIVATE KEY-----",
        ]
    )


_MAKERS: dict[str, Callable[[random.Random], str]] = {
    "card": _card,
    "email": _email,
    "phone": _phone,
    "iban": _iban,
    "national_id": _national_id,
    "secret": _secret,
}


def leaks(text: str, seeded: Iterable[Canary]) -> list[Canary]:
    """The canaries whose raw value appears in `text` (a prompt, a store file's bytes
    decoded, a CLI's output): what a leak count counts."""
    return [c for c in seeded if c.value in text]


def canaries(n: int, kinds: Iterable[str] = KINDS, *, seed: int = 0) -> list[Canary]:
    """`n` distinct canaries of each kind in `kinds`, deterministic under `seed`."""
    wanted = check_kinds(kinds, "canaries")
    r = random.Random(seed)
    out: list[Canary] = []
    for kind in KINDS:
        if kind not in wanted:
            continue
        seen: set[str] = set()
        while len(seen) < n:
            value = _MAKERS[kind](r)
            if value not in seen:
                seen.add(value)
                out.append(Canary(kind, value))
    return out
