"""Every ```python block in the README and docs/ runs, in order, one namespace per file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_code_blocks_run(doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PODIUM_STORE", raising=False)
    monkeypatch.delenv("PODIUM_MODEL", raising=False)
    blocks = BLOCK.findall(doc.read_text())
    namespace: dict[str, object] = {"__name__": f"doc_{doc.stem}"}
    for i, block in enumerate(blocks):
        code = compile(block, f"{doc.name}[block {i}]", "exec")
        exec(code, namespace)
