"""The web UI in a real headless Chromium (Debian's `chromium`, driven by Playwright through
`executable_path`; no browser is downloaded) against a real `podium serve` on loopback.

Set PODIUM_SCREENSHOTS=DIR to keep the screenshots (docs/ui-*.png are made that way)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from served import KEYS, Served
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


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def shoot(page: Any, name: str, tmp: Path) -> None:
    where = Path(os.environ.get("PODIUM_SCREENSHOTS") or tmp)
    where.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(where / name), full_page=True)
    assert (where / name).stat().st_size > 1000


def in_dlq(c: httpx.Client, run_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["run_id"] == run_id for e in c.get("/api/dlq").json()):
            return
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached the DLQ: {c.get('/api/dlq').text}")


def test_the_ui_lists_approves_watches_live_and_requeues(
    server: Served, browser: Any, tmp_path: Path
) -> None:
    c = server.client("admin")
    wait_status(c, start(c, "echo", "hello"), "completed")
    claim = start(c, "claim", {"claim_id": "C-7", "amount": 120})
    wait_status(c, claim, "waiting")
    server.broken.touch()
    try:
        shipped = start(c, "ship", 1)
        wait_status(c, shipped, "failed")
        in_dlq(c, shipped)
    finally:
        server.broken.unlink()

    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    expect = sync_api.expect

    # the key prompt, then 1) the runs list
    page.goto(server.url + "/")
    page.get_by_label("Key").fill(KEYS["admin"])
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_role("link", name=claim)).to_be_visible()
    expect(page.get_by_role("link", name=shipped)).to_be_visible()
    page.get_by_label("Status").select_option("waiting")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name=shipped)).to_have_count(0)
    expect(page.get_by_role("link", name=claim)).to_be_visible()
    page.get_by_label("Status").select_option("")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name=shipped)).to_be_visible()
    shoot(page, "ui-runs.png", tmp_path)

    # 2) the waiting run (opened from the keyboard): its tree, timeline and topology
    page.get_by_role("link", name=claim).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Run {claim}")).to_contain_text("waiting")
    expect(page.locator("ul.tree")).to_contain_text("assess")
    expect(page.locator(".gantt .bar").first).to_be_visible()
    expect(page.locator("#graph")).to_contain_text("approve_payment")

    # 3) approve it with an edit, by clicking in the inbox
    page.get_by_role("link", name="decide in the inbox").click()
    area = page.get_by_label(f"Proposed value for run {claim}")
    expect(area).to_contain_text('"amount": 120')
    area.fill('{"claim_id": "C-7", "amount": 50}')
    page.get_by_label(f"Comment for run {claim}").fill("capped at 50")
    shoot(page, "ui-inbox.png", tmp_path)
    page.evaluate("window.__same_page = true")  # gone if the page reloads
    page.get_by_role("button", name="Approve").click()

    # 4) the run page follows it live (SSE through fetch) until it completes, no reload
    heading = page.get_by_role("heading", name=f"Run {claim}")
    expect(heading).to_contain_text("completed", timeout=20_000)
    expect(page.locator("#output")).to_contain_text("paid 50 on C-7")
    assert page.evaluate("window.__same_page") is True
    assert c.get(f"/api/runs/{claim}").json()["output"] == "paid 50 on C-7"
    shoot(page, "ui-run.png", tmp_path)

    # a question is answered in the inbox, as text
    asked = start(c, "asked", "size?")
    wait_status(c, asked, "waiting")
    page.get_by_role("link", name="Inbox").click()
    card = page.get_by_role("region", name=f"Run {asked}")
    expect(card).to_contain_text("Which size?")
    card.get_by_label(f"Answer for run {asked}").fill("medium")
    card.get_by_role("button", name="Answer").click()
    heading = page.get_by_role("heading", name=f"Run {asked}")
    expect(heading).to_contain_text("completed", timeout=20_000)
    assert c.get(f"/api/runs/{asked}").json()["output"] == "medium"

    # a live run can be cancelled from its page
    doomed = start(c, "asked", "never answered")
    wait_status(c, doomed, "waiting")
    page.goto(f"{server.url}/#/runs/{doomed}")
    page.get_by_role("button", name="Cancel run").click()
    expect(page.get_by_role("heading", name=f"Run {doomed}")).to_contain_text("cancelled")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)

    # the timeline puts the parallel branches on rows of their own, overlapping in time
    reviewed = start(c, "review", "draft")
    wait_status(c, reviewed, "completed")
    page.goto(f"{server.url}/#/runs/{reviewed}")
    expect(page.get_by_role("heading", name=f"Run {reviewed}")).to_contain_text("completed")
    bars = {
        label: page.locator(".gantt .label", has_text=label).first.evaluate(
            "el => { const b = el.nextElementSibling.firstElementChild;"
            " return [parseFloat(b.style.left), parseFloat(b.style.width)] }"
        )
        for label in ("legal", "finance")
    }
    (l1, w1), (l2, w2) = bars["legal"], bars["finance"]
    assert max(l1, l2) < min(l1 + w1, l2 + w2), bars  # they ran at the same time
    writer = page.locator("table tr", has_text="/review/writer#0/model#0")
    expect(writer).to_contain_text("1000")  # tokens in, per step
    expect(writer).to_contain_text("$0.0002")  # 1,000 in x $0.15 + 100 out x $0.60 per million
    shoot(page, "ui-run-parallel.png", tmp_path)

    # 5) requeue the dead letter (its run page marks the failed step); the fixed run completes
    page.goto(f"{server.url}/#/runs/{shipped}")
    expect(page.locator("ul.tree .mark.error")).to_have_count(2)  # deliver and its parent
    expect(page.get_by_role("alert").first).to_contain_text("the carrier rejected the parcel")
    page.get_by_role("link", name="Dead letters").click()
    expect(page.get_by_role("link", name=shipped)).to_be_visible()
    shoot(page, "ui-dlq.png", tmp_path)
    page.get_by_role("button", name=f"Requeue {shipped}").click()
    expect(page.get_by_role("status")).to_contain_text("requeued")
    assert wait_status(c, shipped, "completed")["output"] == "delivered 2"
    assert not any(e["run_id"] == shipped for e in c.get("/api/dlq").json())

    # keyboard: the nav is reachable and a wrong key is asked again
    page.get_by_role("button", name="Change key").click()
    page.get_by_label("Key").fill("wrong")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("refused")
    assert errors == []


def test_the_ui_replays_forks_and_draws_the_topology(
    server: Served, browser: Any, tmp_path: Path
) -> None:
    c = server.client("admin")
    run_id = start(c, "moody", "x")
    wait_status(c, run_id, "completed")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    expect = sync_api.expect
    page.goto(f"{server.url}/#key={KEYS['admin']}")
    expect(page.get_by_role("link", name=run_id)).to_be_visible()
    page.goto(f"{server.url}/#/runs/{run_id}")
    expect(page.get_by_role("heading", name=f"Run {run_id}")).to_contain_text("completed")

    # the topology, drawn: a node per box, reachable from the keyboard, marking its steps
    svg = page.locator("svg.topology")
    expect(svg).to_be_visible()
    node = page.get_by_role("button", name="moody (", exact=False)
    expect(node).to_have_count(1)
    node.focus()
    page.keyboard.press("Enter")
    expect(page.locator("tr.picked")).to_have_count(1)
    expect(page.locator("#graph")).to_contain_text("flowchart TD")  # the Mermaid text, folded

    # Replay: deterministic; then the outside world changes and it names the step
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("#verdict")).to_contain_text("Deterministic")
    server.rainy.touch()
    try:
        page.get_by_role("button", name="Replay").click()
        verdict = page.locator("#verdict")
        expect(verdict).to_contain_text("Not deterministic")
        expect(verdict).to_contain_text("/moody/museum#0")
        expect(page.locator("tr.differs")).to_contain_text("/moody")  # the journal's row
        expect(page.locator("svg.topology .node.differs")).to_have_count(1)

        # Fork from the step the code now decides otherwise at: a bad input is refused first
        page.get_by_role("button", name="Fork from step /moody/picnic#0").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("/moody/picnic#0")
        dialog.get_by_label("New input").fill("{not json")
        dialog.get_by_role("button", name="Start the fork").click()
        expect(dialog.get_by_role("alert")).to_contain_text("not valid JSON")
        dialog.get_by_label("New input").fill("")
        shoot(page, "ui-fork.png", tmp_path)
        dialog.get_by_role("button", name="Start the fork").click()
        heading = page.get_by_role("heading", name="Run ")
        expect(heading).not_to_contain_text(run_id)
        expect(heading).to_contain_text("completed", timeout=20_000)
        expect(page.locator("#output")).to_contain_text("museum(plan(x))")
        expect(page.get_by_role("link", name=run_id)).to_be_visible()  # where it came from
    finally:
        server.rainy.unlink()
    forked = page.url.rsplit("/", 1)[1]
    assert c.get(f"/api/runs/{forked}").json()["output"] == "museum(plan(x))"
    assert c.get(f"/api/runs/{run_id}").json()["output"] == "picnic(plan(x))"

    # a nested workflow draws its subgraphs and every edge the API gives
    reviewed = start(c, "review", "draft")
    wait_status(c, reviewed, "completed")
    page.goto(f"{server.url}/#/runs/{reviewed}")
    expect(page.get_by_role("heading", name=f"Run {reviewed}")).to_contain_text("completed")
    graph = c.get(f"/api/runs/{reviewed}/graph").json()
    expect(page.locator("svg.topology path.edge")).to_have_count(len(graph["edges"]))
    expect(page.locator("svg.topology .node.group")).to_have_count(2)
    expect(page.get_by_role("button", name="legal (", exact=False)).to_be_visible()
    boxes = page.locator("svg.topology .node:not(.group)").evaluate_all(
        "els => els.map(e => { const b = e.getBBox(); return [b.x, b.y, b.width, b.height] })"
    )
    for i, (x1, y1, w1, h1) in enumerate(boxes):  # no two boxes overlap
        for x2, y2, w2, h2 in boxes[i + 1 :]:
            assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1, boxes
    page.get_by_text("Mermaid text").click()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    shoot(page, "ui-topology.png", tmp_path)
    assert errors == []


def test_every_example_workflow_draws_without_overlaps(server: Served, browser: Any) -> None:
    """The SVG layout of every example's topology: boxes apart, each inside its subgraph's
    frame, one path per edge."""
    from podium.spec.loader import load_yaml
    from podium.spec.mermaid import to_graph

    graphs = {}
    for file in sorted((Path(__file__).parents[2] / "examples" / "yaml").glob("*.yaml")):
        drawn = to_graph(load_yaml(file))
        graphs[file.stem] = {
            "agent": file.stem,
            "nodes": [n.to_dict() for n in drawn.nodes],
            "edges": [e.to_dict() for e in drawn.edges],
        }
    page = browser.new_page()
    page.goto(server.url + "/healthz")
    found = page.evaluate(
        """async (graphs) => {
        const { topology } = await import("/topology.js");
        const out = {};
        for (const [name, graph] of Object.entries(graphs)) {
            const svg = topology(graph);
            document.body.append(svg);
            const box = (el) => { const b = el.getBBox(); return [b.x, b.y, b.width, b.height]; };
            out[name] = {
                leaves: [...svg.querySelectorAll(".node:not(.group)")].map(box),
                frames: Object.fromEntries([...svg.querySelectorAll(".node")].map(
                    (el) => [el.dataset.node, box(el.querySelector(".frame, .shape"))])),
                paths: svg.querySelectorAll("path.edge").length,
            };
            svg.remove();
        }
        return out;
    }""",
        graphs,
    )
    assert set(found) == set(graphs) and len(graphs) >= 10
    for name, drawn in found.items():
        graph = graphs[name]
        assert drawn["paths"] == len(graph["edges"]), name
        leaves = drawn["leaves"]
        for i, (x1, y1, w1, h1) in enumerate(leaves):
            for x2, y2, w2, h2 in leaves[i + 1 :]:
                apart = x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
                assert apart, (name, leaves)
        for node in graph["nodes"]:
            if node["parent"] is None:
                continue
            x, y, w, h = drawn["frames"][node["id"]]
            px, py, pw, ph = drawn["frames"][node["parent"]]
            inside = px <= x and py <= y and x + w <= px + pw and y + h <= py + ph
            assert inside, (name, node["id"], node["parent"])
