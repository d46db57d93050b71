"""Property-based fuzzing of the API with schemathesis against its own OpenAPI document,
on a real `podium serve`: every generated request, valid or not, gets an answer below 500,
with a status, content type and body its OpenAPI document declares."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from served import KEYS, serve

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("server")]


def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    st = shutil.which("schemathesis")
    if st is None:
        pytest.skip("schemathesis is not installed (the dev extra has it)")
    served = serve(tmp_path)
    try:
        with served.client("operator") as c:  # a run to find, so that paths are not all 404
            assert c.post("/api/runs", json={"target": "tests/server/flows.py:echo", "input": "x"})
        done = subprocess.run(
            [
                st,
                "run",
                f"{served.url}/openapi.json",
                "-H",
                f"Authorization: Bearer {KEYS['admin']}",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_schema_conformance",
                "--max-examples",
                "40",
                "--seed",
                "12",
                "--generation-database",
                "none",
                "--report-dir",
                str(tmp_path / "report"),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,  # its cache folder goes there, not into the checkout
        )
    finally:
        served.stop()
    summary = done.stdout[-3000:]
    assert done.returncode == 0, summary
    assert re.search(r"(\d+) generated, \1 passed", summary), summary
    statuses = re.findall(r'" (\d{3})', served.log.read_text())
    assert statuses and not [s for s in statuses if s.startswith("5")]
