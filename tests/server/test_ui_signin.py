"""Opening the UI in one command: `podium serve --open` at a first start prints (and opens)
a link that signs the browser in, the key riding in the fragment, which never reaches the
server. Tested in real headless Chromium against a real server."""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import httpx
import pytest
from served import serve
from test_server_api import start, wait_status

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("server"),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="no Chromium: install Debian's package (apt-get install -y chromium); .ci/run does",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")

LINK = re.compile(r"http://127\.0\.0\.1:(\d+)/#key=(\S+)")


def opened_link(record: Path, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if record.exists() and record.read_text().strip():
            return record.read_text().strip()
        time.sleep(0.1)
    raise AssertionError("podium serve --open never opened a browser")


def test_serve_open_signs_the_browser_in_with_the_first_key(tmp_path: Path) -> None:
    record = tmp_path / "opened.txt"
    # webbrowser honours $BROWSER: a "browser" that writes down the link it was given
    script = tmp_path / "browser.py"
    script.write_text(f"import sys\nopen({str(record)!r}, 'w').write(sys.argv[1])\n")
    fake_browser = f"{sys.executable} {script} %s"
    server = serve(tmp_path, keys=False, extra=("--open",), env={"BROWSER": fake_browser})
    try:
        printed = LINK.search(server.log.read_text())
        assert printed, server.log.read_text()
        assert server.url.endswith(f":{printed.group(1)}")
        link = opened_link(record)
        assert link == printed.group(0)
        key = printed.group(2)
        c = server.client(key=key)
        run = start(c, "echo", "signed in")
        wait_status(c, run, "completed")

        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                page = browser.new_page()
                requests: list[str] = []
                page.on("request", lambda r: requests.append(r.url))
                page.goto(link)
                sync_api.expect(page.get_by_role("heading", name="Runs")).to_be_visible()
                sync_api.expect(page.get_by_role("link", name=run)).to_be_visible()
                assert "key=" not in page.url  # dropped from the address bar
                assert page.evaluate("localStorage.getItem('podium.key')") == key
                # the key went out as a header, never in a URL
                assert requests and not any(key in url for url in requests)
            finally:
                browser.close()
        assert key not in server.log.read_text().split(link, 1)[1]  # not in the access log
    finally:
        server.stop()


def test_a_second_start_prints_no_key_and_the_ui_asks_for_one(tmp_path: Path) -> None:
    first = serve(tmp_path, keys=False)
    first.stop()
    assert LINK.search(first.log.read_text())
    again = serve(tmp_path, keys=False)
    try:
        log = again.log.read_text()
        assert not LINK.search(log) and "shown this once" not in log
        assert httpx.get(again.url + "/api/runs").status_code == 401
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                page = browser.new_page()
                page.goto(again.url + "/")
                sync_api.expect(page.get_by_role("heading", name="API key")).to_be_visible()
            finally:
                browser.close()
    finally:
        again.stop()
