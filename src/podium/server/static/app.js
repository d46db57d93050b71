// podium's web UI: plain DOM, hash routes (#/runs, #/runs/ID, #/inbox, #/dlq), no build step.
// The API takes `Authorization: Bearer KEY`; the key is kept in localStorage. SSE is read with
// fetch() streaming because EventSource cannot send that header.

import { nodeName, topology } from "./topology.js";

const KEY = "podium.key";
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const PAGE = 50;
const SAGA = "/~saga"; // the journal's row of a run's side effects: not a step to fork from
const STATUSES = ["running", "waiting", "completed", "failed", "cancelled"];
const main = document.getElementById("main");
let leave = () => {}; // stops the current page's live work (its SSE stream, timers)

// ---- small helpers -------------------------------------------------------------------------
function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}
const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "");
const secs = (s) => (s === null || s === undefined ? "" : s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`);
const tokens = (u) => (u ? (u.input_tokens || 0) + (u.output_tokens || 0) : 0);
const usd = (u) => (u && u.usd ? `$${u.usd.toFixed(4)}` : "");
const badge = (status) => h("span", { class: `badge s-${status}` }, status);
const json = (v) => JSON.stringify(v, null, 2);
const runLink = (id) => h("a", { href: `#/runs/${encodeURIComponent(id)}` }, id);
function status(text, cls = "muted") {
  const el = main.querySelector("[role=status]");
  if (el) { el.textContent = text; el.className = cls; }
}

class ApiError extends Error {}

async function api(path, options = {}) {
  const key = localStorage.getItem(KEY);
  if (!key) { askKey(); throw new ApiError("no API key"); }
  const headers = { Authorization: `Bearer ${key}`, ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { ...options, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  if (r.status === 401) { askKey("That key was refused (401): enter a valid one."); throw new ApiError("unauthorized"); }
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    const detail = typeof body === "object" && body ? body.detail : body;
    throw new ApiError(`${r.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return body;
}

// Reads /api/runs/ID/events as SSE through fetch; calls onEvent(kind, data) per event and
// reconnects with Last-Event-ID if the connection drops while the run is live.
function follow(runId, onEvent, onEnd) {
  const ctl = new AbortController();
  let last = null;
  (async () => {
    for (let tries = 0; tries < 20 && !ctl.signal.aborted; tries++) {
      try {
        const headers = { Authorization: `Bearer ${localStorage.getItem(KEY)}` };
        if (last !== null) headers["Last-Event-ID"] = String(last);
        const r = await fetch(`/api/runs/${encodeURIComponent(runId)}/events`, { headers, signal: ctl.signal });
        if (!r.ok) return;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) { onEnd(); return; } // the server closes the stream when the run is over
          buf += value;
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
            const ev = {};
            for (const line of block.split("\n")) {
              if (!line || line.startsWith(":")) continue;
              const i = line.indexOf(":");
              ev[line.slice(0, i)] = line.slice(i + 1).replace(/^ /, "");
            }
            if (ev.id !== undefined) last = Number(ev.id);
            if (ev.event || ev.data) onEvent(ev.event, ev.data);
          }
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
        await new Promise((ok) => setTimeout(ok, 1000));
      }
    }
  })();
  return () => ctl.abort();
}

// ---- the key -------------------------------------------------------------------------------
function askKey(message = "") {
  leave(); leave = () => {};
  main.replaceChildren(
    h("h1", {}, "API key"),
    h("p", {}, "The API needs a key: the one `podium serve` printed at first start, or one from PODIUM_API_KEYS. It is kept in this browser's localStorage."),
    ...(message ? [h("p", { class: "error-box", role: "alert" }, message)] : []),
    h("form", { class: "filters", onsubmit: (e) => {
      e.preventDefault();
      const value = new FormData(e.target).get("key").trim();
      if (!value) return;
      localStorage.setItem(KEY, value);
      route();
    } },
      h("label", {}, "Key", h("input", { name: "key", type: "password", autocomplete: "current-password", size: 40, required: true })),
      h("button", { type: "submit" }, "Use this key")),
  );
  main.querySelector("input").focus();
}

// ---- runs ----------------------------------------------------------------------------------
async function runsPage(params) {
  const st = params.get("status") || "";
  const agent = params.get("agent") || "";
  const form = h("form", { class: "filters", onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const q = new URLSearchParams();
    if (f.get("status")) q.set("status", f.get("status"));
    if (f.get("agent").trim()) q.set("agent", f.get("agent").trim());
    location.hash = `#/runs${q.toString() ? "?" + q : ""}`;
  } },
    h("label", {}, "Status", h("select", { name: "status" },
      h("option", { value: "" }, "any"),
      STATUSES.map((s) => h("option", { value: s, selected: s === st }, s)))),
    h("label", {}, "Agent", h("input", { name: "agent", value: agent, placeholder: "any" })),
    h("button", { type: "submit" }, "Filter"));
  main.replaceChildren(h("h1", {}, "Runs"), form, h("p", { role: "status" }, "Loading…"));
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  if (st) q.set("status", st);
  if (agent) q.set("agent", agent);
  const page = await api(`/api/runs?${q}`);
  const n = page.runs.length;
  status(n ? `Runs ${offset + 1}–${offset + n}, newest first` : "No runs match.");
  const at = (o) => { const p = new URLSearchParams(params); p.set("offset", String(o)); return `#/runs?${p}`; };
  const pager = h("p", { class: "actions" },
    offset > 0 ? h("a", { href: at(Math.max(0, offset - PAGE)) }, "← Newer") : null,
    page.next_offset !== null && page.next_offset !== undefined ? h("a", { href: at(page.next_offset) }, "Older →") : null);
  main.append(h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Run"), h("th", {}, "Agent"), h("th", {}, "Status"),
      h("th", {}, "Updated"), h("th", { class: "num" }, "Tokens"), h("th", { class: "num" }, "Cost"), h("th", {}, "Error"))),
    h("tbody", {}, page.runs.map((r) => h("tr", {},
      h("td", {}, runLink(r.run_id)), h("td", {}, r.agent), h("td", {}, badge(r.status)),
      h("td", { class: "when" }, when(r.updated_at)), h("td", { class: "num" }, tokens(r.usage)),
      h("td", { class: "num" }, usd(r.usage)), h("td", { class: "muted" }, r.error || ""))))), pager);
}

// ---- one run -------------------------------------------------------------------------------
function treeNode(n, differs = null) {
  const marks = [
    differs === n.key && h("span", { class: "mark differs", title: "a replay of the run's code decides otherwise here" }, "differs on replay"),
    n.replayed && h("span", { class: "mark", title: "taken from the journal, not re-executed" }, "replayed"),
    n.cached && h("span", { class: "mark" }, "cached"),
    n.retries.length > 0 && h("span", { class: "mark retry", title: n.retries.join("\n") }, `${n.retries.length} retr${n.retries.length === 1 ? "y" : "ies"}`),
    n.error && h("span", { class: "mark error" }, "error"),
  ];
  return h("li", {},
    h("strong", {}, n.agent), " ", h("code", { class: "muted" }, n.kind), " ", badge(n.status), marks,
    h("span", { class: "muted" }, ` ${secs(n.duration)}`,
      tokens(n.usage) ? ` · ${tokens(n.usage)} tokens` : "", n.usage.usd ? ` · ${usd(n.usage)}` : ""),
    n.error ? h("div", { class: "error-box" }, n.error) : null,
    n.retries.length ? h("div", { class: "muted" }, n.retries.map((r) => h("div", {}, `retry: ${r}`))) : null,
    n.children.length ? h("ul", {}, n.children.map((c) => treeNode(c, differs))) : null);
}

// the trace's nodes by step key, in tree order, with their depth
function flatten(nodes, out = new Map(), depth = 0) {
  for (const n of nodes) { out.set(n.key, { ...n, depth }); flatten(n.children, out, depth + 1); }
  return out;
}

function gantt(steps, byKey, now) {
  const timed = steps.filter((s) => s.started_at);
  if (!timed.length) return h("p", { class: "muted" }, "No steps yet.");
  const t0 = Math.min(...timed.map((s) => s.started_at));
  const t1 = Math.max(...timed.map((s) => s.ended_at || now));
  const span = Math.max(t1 - t0, 1e-3);
  // one row per step in the tree's order (children under their parent, indented), so the
  // branches of a parallel step sit side by side as rows whose bars overlap in time
  const order = [...byKey.keys()];
  const rank = (s) => { const i = order.indexOf(s.key); return i < 0 ? order.length : i; };
  const rows = [...timed].sort((a, b) => rank(a) - rank(b) || a.started_at - b.started_at);
  return h("div", { class: "gantt", role: "list", "aria-label": "Timeline of steps" },
    rows.flatMap((s) => {
      const end = s.ended_at || now;
      const node = byKey.get(s.key);
      const left = ((s.started_at - t0) / span) * 100;
      const width = Math.max(((end - s.started_at) / span) * 100, 0.3);
      const label = `${s.agent} (${s.kind}) ${s.status}, ${secs(end - s.started_at)}`;
      return [
        h("div", { class: "label", title: s.key, role: "listitem", style: `padding-left:${(node ? node.depth : 0) * 0.9}rem` }, s.agent, " ", h("span", { class: "muted" }, s.kind)),
        h("div", { class: "lane", title: label },
          h("div", { class: `bar s-${s.status}${node && node.replayed ? " replayed" : ""}`, style: `left:${left}%;width:${width}%` })),
        h("div", { class: "muted" }, secs(end - s.started_at)),
      ];
    }));
}

// The journal's row a replay's step stands for: the step itself, or its nearest ancestor the
// journal holds (a step the code now calls was never journaled).
function rowOf(key, keys) {
  for (let k = key; k; k = k.slice(0, Math.max(0, k.lastIndexOf("/")))) if (keys.has(k)) return k;
  return null;
}

function verdictBox(v) {
  if (!v) return null;
  if (v.error) return h("p", { class: "error-box", id: "verdict" }, `Replay: ${v.error}`);
  if (v.ok) return h("p", { class: "note ok", id: "verdict" }, h("strong", {}, "✓ Deterministic. "), v.message);
  return h("div", { class: "error-box", id: "verdict" },
    h("strong", {}, "✗ Not deterministic: "), "the code now decides otherwise at step ", h("code", {}, v.step), ".",
    h("div", {}, v.problem));
}

// The dialog that forks the run from a step: an optional new input, then the new run's page.
function forkDialog(runId, run, key) {
  const id = encodeURIComponent(runId);
  const problem = h("p", { class: "error-box", role: "alert", hidden: true });
  const area = h("textarea", { rows: 5, id: "fork-input", placeholder: `leave empty to keep the run's input:\n${json(run.input)}`,
    oninput: () => { problem.hidden = true; } });
  const go = h("button", { type: "submit" }, "Start the fork");
  const dialog = h("dialog", { class: "card", "aria-labelledby": "fork-title" },
    h("form", { method: "dialog", onsubmit: async (e) => {
      e.preventDefault();
      const body = { at: key };
      if (area.value.trim()) {
        try { body.input = JSON.parse(area.value); } catch (err) {
          problem.hidden = false; problem.textContent = `The input is not valid JSON: ${err.message}`; area.focus(); return;
        }
      }
      go.disabled = true;
      try {
        const forked = await api(`/api/runs/${id}/fork`, { method: "POST", body });
        dialog.close();
        location.hash = `#/runs/${encodeURIComponent(forked.run_id)}`;
      } catch (err) { go.disabled = false; problem.hidden = false; problem.textContent = err.message; }
    } },
      h("h2", { id: "fork-title" }, "Fork from ", h("code", {}, key)),
      h("p", { class: "muted" }, `A new run of ${run.agent}: the steps completed before this one are reused from run ${runId}, this step and what follows run again. Run ${runId} is left as it is.`),
      h("label", { for: "fork-input" }, "New input (JSON, optional)"), area, problem,
      h("div", { class: "actions" }, go, h("button", { type: "button", class: "quiet", onclick: () => dialog.close() }, "Cancel"))));
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  area.focus();
}

function graphSection(graph, run, verdict) {
  if (graph.error) return [h("h2", {}, "Topology"), h("p", { class: "muted" }, `No topology: ${graph.error}`)];
  const statusOf = new Map();
  for (const st of run.steps) statusOf.set(st.agent, st.status);
  const differs = verdict && verdict.step ? verdict.step.split("/").filter(Boolean).map((seg) => seg.replace(/#\d+$/, "")) : [];
  const names = new Set(graph.nodes.map((n) => nodeName(n.label)));
  const marked = [...differs].reverse().find((name) => names.has(name));
  const pick = (name) => {
    const rows = [...main.querySelectorAll("tr[data-agent]")];
    for (const row of rows) row.classList.toggle("picked", row.dataset.agent === name);
    const first = rows.find((row) => row.dataset.agent === name);
    status(first ? `${name}: ${rows.filter((r) => r.dataset.agent === name).length} step(s) marked in the table below` : `${name}: no step of the run`);
    if (first) first.scrollIntoView({ block: "nearest" });
  };
  const copy = h("button", { type: "button", class: "quiet", onclick: async () => {
    try { await navigator.clipboard.writeText(graph.mermaid); copy.textContent = "Copied"; } catch {
      const range = document.createRange(); range.selectNodeContents(main.querySelector("#graph"));
      getSelection().removeAllRanges(); getSelection().addRange(range); copy.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => { copy.textContent = "Copy"; }, 2000);
  } }, "Copy");
  return [
    h("h2", { id: "topology-title" }, "Topology"),
    h("figure", { class: "topology-box" },
      topology(graph, { state: (name) => ({ status: statusOf.get(name), differs: name === marked }), pick }),
      h("figcaption", { class: "muted" }, "Choose a node (click, or Tab then Enter) to mark its steps below.")),
    h("details", {}, h("summary", {}, "Mermaid text (", h("code", {}, "podium graph"), ")"),
      h("div", { class: "actions" }, copy), h("pre", { id: "graph" }, graph.mermaid)),
  ];
}

async function runPage(runId) {
  let stop = null;
  let timer = null;
  let alive = true;
  let verdict = null; // the last replay's, kept across redraws
  leave = () => { alive = false; if (stop) stop(); clearTimeout(timer); for (const d of document.querySelectorAll("dialog")) d.remove(); };
  const id = encodeURIComponent(runId);
  const graph = api(`/api/runs/${id}/graph?direction=TD`).catch((e) => ({ error: e.message }));

  async function replay(button) {
    button.disabled = true;
    button.textContent = "Replaying…";
    try { verdict = await api(`/api/runs/${id}/replay`, { method: "POST" }); } catch (err) { verdict = { error: err.message }; }
    if (!alive) return;
    await draw();
    main.querySelector("#verdict")?.scrollIntoView({ block: "nearest" });
    main.querySelector("#replay")?.focus();
  }

  async function draw() {
    const [run, trace] = await Promise.all([api(`/api/runs/${id}`), api(`/api/runs/${id}/trace`)]);
    if (!alive) return run;
    const byKey = flatten(trace.steps);
    const live = !TERMINAL.has(run.status);
    const finished = run.status === "completed" || run.status === "failed";
    const keys = new Set(run.steps.map((s) => s.key));
    const differs = verdict && verdict.step ? rowOf(verdict.step, keys) : null;
    // a redraw replaces the page: keep the keyboard focus on the same link or element
    const was = document.activeElement;
    const focused = was && main.contains(was) ? (was.id ? `#${CSS.escape(was.id)}` : was.getAttribute("href") ? `[href="${CSS.escape(was.getAttribute("href"))}"]` : null) : null;
    main.replaceChildren(...[
      h("p", {}, h("a", { href: "#/runs" }, "← Runs")),
      h("h1", {}, `Run ${run.run_id} `, badge(run.status), live ? h("span", { class: "live", "aria-live": "polite" }, " ● live") : null),
      h("dl", { class: "facts" },
        h("div", {}, h("dt", {}, "Agent"), h("dd", {}, run.agent)),
        h("div", {}, h("dt", {}, "Started"), h("dd", {}, when(run.created_at))),
        h("div", {}, h("dt", {}, "Updated"), h("dd", {}, when(run.updated_at))),
        h("div", {}, h("dt", {}, "Tokens"), h("dd", {}, tokens(run.usage))),
        h("div", {}, h("dt", {}, "Cost"), h("dd", {}, usd(run.usage) || "$0"))),
      run.error ? h("div", { class: "error-box", role: "alert" }, run.error) : null,
      run.forked_from ? h("p", { class: "note" }, "Forked from run ", runLink(run.forked_from), " at step ", h("code", {}, run.forked_at),
        ": the steps before it were reused from that run's journal.") : null,
      run.status === "waiting" ? h("p", { class: "note" }, "This run waits for a person: ", h("a", { href: "#/inbox" }, "decide in the inbox"), ".") : null,
      live ? h("p", { class: "actions" }, h("button", { type: "button", id: "cancel", class: "danger", onclick: async (e) => {
        e.target.disabled = true;
        try { await api(`/api/runs/${id}/cancel`, { method: "POST" }); await draw(); } catch (err) { e.target.disabled = false; show(err); }
      } }, "Cancel run")) : null,
      finished ? h("p", { class: "actions" }, h("button", { type: "button", id: "replay", "aria-describedby": "replay-what", onclick: (e) => replay(e.target) }, "Replay"),
        h("span", { class: "muted", id: "replay-what" }, "Re-run the orchestration against the journal (no model, no tool): does the code still decide as the run did?")) : null,
      h("div", { "aria-live": "polite" }, verdictBox(verdict)),
      h("p", { role: "status" }),
      h("h2", {}, "Steps"),
      trace.steps.length ? h("ul", { class: "tree" }, trace.steps.map((n) => treeNode(n, differs))) : h("p", { class: "muted" }, "No steps yet."),
      h("h2", {}, "Timeline"),
      gantt(run.steps, byKey, Date.now() / 1000),
      h("h2", {}, "Per step"),
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Step"), h("th", {}, "Status"), h("th", { class: "num" }, "Attempt"),
          h("th", { class: "num" }, "In"), h("th", { class: "num" }, "Out"), h("th", { class: "num" }, "Cost"), h("th", {}, "Error"),
          TERMINAL.has(run.status) ? h("th", {}, h("span", { class: "sr-only" }, "Fork")) : null)),
        h("tbody", {}, run.steps.map((s) => h("tr", { "data-agent": s.agent, class: s.key === differs ? "differs" : null },
          h("td", {}, h("code", {}, s.key), s.key === differs ? h("span", { class: "mark differs" }, "differs on replay") : null),
          h("td", {}, badge(s.status)), h("td", { class: "num" }, s.attempt),
          h("td", { class: "num" }, s.usage ? s.usage.input_tokens : ""), h("td", { class: "num" }, s.usage ? s.usage.output_tokens : ""),
          h("td", { class: "num" }, usd(s.usage)), h("td", { class: "muted" }, s.error || ""),
          TERMINAL.has(run.status) && s.key !== SAGA ? h("td", {}, h("button", { type: "button", class: "quiet small", "aria-label": `Fork from step ${s.key}`,
            title: "Start a new run that reuses the steps before this one", onclick: () => forkDialog(runId, run, s.key) }, "Fork from here")) : null)))),
      h("h2", {}, "Input"), h("pre", {}, json(run.input)),
      ...(run.output !== null ? [h("h2", {}, "Output"), h("pre", { id: "output" }, json(run.output))] : []),
      ...graphSection(await graph, run, verdict),
    ].filter((x) => x !== null));
    if (focused) main.querySelector(focused)?.focus();
    return run;
  }

  main.replaceChildren(h("p", { role: "status" }, "Loading…"));
  const run = await draw();
  if (!TERMINAL.has(run.status) && alive) {
    // each event schedules one refetch (coalesced), so a burst of events draws once
    const again = () => { clearTimeout(timer); timer = setTimeout(() => draw().catch(show), 150); };
    stop = follow(runId, again, again);
  }
}

// ---- inbox ---------------------------------------------------------------------------------
// What a request takes depends on its kind (as podium's runtime checks it): an approval is
// approved (a proposed value can be edited first) or rejected; a question is answered or
// rejected; an effect of unknown outcome takes all three.
const TAKES = { approval: ["approve", "reject"], question: ["answer", "reject"], effect_unknown: ["approve", "answer", "reject"] };

function inboxCard(w) {
  const req = w.request && typeof w.request === "object" ? w.request : {};
  const kind = TAKES[req.kind] ? req.kind : "question";
  const takes = TAKES[kind];
  const editable = kind === "approval" && "proposed" in req;
  const original = editable ? json(req.proposed) : "";
  const who = `run ${w.run_id}`;
  const area = editable
    ? h("textarea", { rows: Math.min(14, original.split("\n").length + 1), "aria-label": `Proposed value for ${who}` }, original)
    : takes.includes("answer") ? h("textarea", { rows: 3, "aria-label": `Answer for ${who}`, placeholder: "JSON, or plain text" }) : null;
  const comment = h("input", { "aria-label": `Comment for ${who}`, placeholder: "comment (needed to reject)", size: 36 });
  const act = async (button, path, body) => {
    button.disabled = true;
    try {
      await api(`/api/runs/${encodeURIComponent(w.run_id)}/${path}`, { method: "POST", body });
      location.hash = `#/runs/${encodeURIComponent(w.run_id)}`;
    } catch (e) { button.disabled = false; show(e); }
  };
  const buttons = [];
  if (takes.includes("approve")) buttons.push(h("button", { type: "button", onclick: (e) => {
    const body = { comment: comment.value, step: w.step };
    if (editable && area.value.trim() !== original.trim()) {
      try { body.edited = JSON.parse(area.value); } catch (err) { show(new ApiError(`The edited value is not valid JSON: ${err.message}`)); area.focus(); return; }
    }
    act(e.target, "approve", body);
  } }, "Approve"));
  if (takes.includes("answer")) buttons.push(h("button", { type: "button", onclick: (e) => {
    const text = area.value.trim();
    if (!text) { show(new ApiError("Write an answer first.")); area.focus(); return; }
    let answer = text;
    try { answer = JSON.parse(text); } catch { /* plain text is a string answer */ }
    act(e.target, "answer", { answer, step: w.step });
  } }, "Answer"));
  buttons.push(h("button", { type: "button", class: "danger", onclick: (e) => {
    if (!comment.value.trim()) { show(new ApiError("Say why in the comment to reject.")); comment.focus(); return; }
    act(e.target, "reject", { comment: comment.value, step: w.step });
  } }, "Reject"));
  const shown = { ...req };
  for (const k of ["kind", "prompt", "proposed", "assignee"]) delete shown[k];
  return h("section", { class: "card", "aria-label": `Run ${w.run_id}` },
    h("h2", {}, runLink(w.run_id), " · ", w.agent, " ", h("span", { class: "mark" }, kind.replace("_", " ")),
      w.overdue ? h("span", { class: "mark error" }, "overdue") : null),
    h("p", {}, req.prompt || w.reason),
    h("p", { class: "muted" }, `waiting since ${when(w.since)}`, w.deadline_at ? `, deadline ${when(w.deadline_at)}` : "",
      req.assignee ? `, for ${req.assignee}` : "", " · step ", h("code", {}, w.step)),
    Object.keys(shown).length ? h("details", { open: !editable }, h("summary", {}, "Details"), h("pre", {}, json(shown))) : null,
    editable ? h("label", {}, "Proposed value (edit the JSON to approve a changed value)", area) : area ? h("label", {}, "Answer", area) : null,
    h("div", { class: "actions" }, comment, buttons));
}

async function inboxPage() {
  main.replaceChildren(h("h1", {}, "Inbox"), h("p", { role: "status" }, "Loading…"));
  const items = await api("/api/inbox");
  status(items.length ? `${items.length} waiting for a decision` : "Nothing waits for a decision.");
  main.append(...items.map(inboxCard));
}

// ---- dead letters --------------------------------------------------------------------------
async function dlqPage() {
  main.replaceChildren(h("h1", {}, "Dead letters"), h("p", { role: "status" }, "Loading…"));
  const entries = await api("/api/dlq");
  status(entries.length ? `${entries.length} run${entries.length === 1 ? "" : "s"} failed for good` : "The dead-letter queue is empty.");
  if (!entries.length) return;
  const act = async (button, runId, what) => {
    button.disabled = true;
    try {
      const done = await api(`/api/dlq/${encodeURIComponent(runId)}/${what}`, { method: "POST" });
      await dlqPage();
      status(`${runId}: ${done.message}`, "live");
    } catch (e) { button.disabled = false; show(e); }
  };
  main.append(h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Run"), h("th", {}, "Agent"), h("th", {}, "When"), h("th", {}, "Error"), h("th", {}, ""))),
    h("tbody", {}, entries.map((d) => h("tr", {},
      h("td", {}, runLink(d.run_id)), h("td", {}, d.agent), h("td", {}, when(d.at)),
      h("td", {}, d.error || d.kind),
      h("td", {}, h("div", { class: "actions" },
        h("button", { type: "button", "aria-label": `Requeue ${d.run_id}`, onclick: (e) => act(e.target, d.run_id, "requeue") }, "Requeue"),
        h("button", { type: "button", class: "quiet", "aria-label": `Discard ${d.run_id}`, onclick: (e) => act(e.target, d.run_id, "discard") }, "Discard"))))))));
}

// ---- routing -------------------------------------------------------------------------------
function show(e) {
  if (e instanceof ApiError && (e.message === "no API key" || e.message === "unauthorized")) return;
  let box = main.querySelector(".error-box[data-ui]");
  if (!box) { box = h("p", { class: "error-box", role: "alert", "data-ui": true }); main.prepend(box); }
  box.textContent = e.message || String(e);
}

async function route() {
  leave(); leave = () => {};
  if (!localStorage.getItem(KEY)) return askKey();
  const [path, query] = (location.hash.slice(1) || "/runs").split("?");
  const parts = path.split("/").filter(Boolean);
  const page = parts[0] || "runs";
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  document.title = `podium · ${page}`;
  try {
    if (page === "runs" && parts[1]) await runPage(decodeURIComponent(parts.slice(1).join("/")));
    else if (page === "runs") await runsPage(new URLSearchParams(query || ""));
    else if (page === "inbox") await inboxPage();
    else if (page === "dlq") await dlqPage();
    else main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/runs" }, "Go to the runs")));
  } catch (e) { show(e); }
}

document.getElementById("forget").addEventListener("click", () => { localStorage.removeItem(KEY); askKey(); });
// on navigation the focus moves to the page's content, as a page load would put it
window.addEventListener("hashchange", () => route().then(() => {
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}));
// `podium serve` prints a link that signs in: http://host:port/#key=KEY (a fragment never
// leaves the browser). Keep the key, and drop it from the address bar and history.
{
  const signIn = location.hash.match(/^#key=(.+)$/);
  if (signIn) {
    localStorage.setItem(KEY, decodeURIComponent(signIn[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}
route();
