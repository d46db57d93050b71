"""Prometheus metrics of runs, fed by their events (extra `server`: `prometheus-client`).

    metrics = Metrics()                          # a registry of its own
    rt = Runtime(store, on_event=metrics)        # or: rt.subscribe(metrics)
    ...
    body = await metrics.scrape(await rt.open()) # the exposition text, store gauges fresh

What is counted as runs go (from the events this process sees):

- `podium_runs_total{status}`: runs that ended or stopped (completed, failed, waiting,
  cancelled, parked) and runs started and resumed;
- `podium_step_duration_seconds{agent,kind,outcome}`: how long steps took;
- `podium_tokens_total{agent,model,direction}` and `podium_cost_usd_total{agent,model}`:
  spend of model and tool steps (failed attempts too: they were paid for), charged to the
  agent that made the call (the step above it) and the model its `step.started` named;
- `podium_step_retries_total{agent}`, `podium_policy_denials_total{tool}`,
  `podium_breaker_transitions_total{circuit,to}`, `podium_breaker_rejections_total{circuit}`
  and `podium_breaker_state{circuit}` (0 closed, 1 half open, 2 open).

What is read from the store when scraped (so every process sees the same figures, whoever ran
the runs): `podium_stored_runs{status}` (runs stored in each status), `podium_runs_waiting` and
`podium_dlq_size`.

Labels never carry run ids, and every label takes at most `max_label_values` distinct values
(beyond, `_other`): a metric's series stay bounded however many runs go by. A runtime with no
`Metrics` listener pays nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podium.core.records import Event, RunStatus

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from podium.stores.base import Store

__all__ = ["DLQ_NAMESPACE", "Metrics", "metrics_text"]

DLQ_NAMESPACE = "dlq"  # podium.runtime.dlq.DLQ (observability sits below the runtime)
OTHER = "_other"
_RUN_KINDS = {
    "run.started": "started",
    "run.resumed": "resumed",
    "run.completed": "completed",
    "run.failed": "failed",
    "run.waiting": "waiting",
    "run.cancelled": "cancelled",
    "run.parked": "parked",
}
_ENDS = frozenset({"run.completed", "run.failed", "run.waiting", "run.cancelled", "run.parked"})
_BREAKER = {"breaker.closed": 0, "breaker.half_open": 1, "breaker.opened": 2}
_CACHED = 4096
_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def _require() -> Any:
    try:
        import prometheus_client
    except ImportError:  # pragma: no cover - the extra is installed in CI
        from podium.errors import UsageError

        raise UsageError("metrics need prometheus-client: pip install 'podium[server]'") from None
    return prometheus_client


class _Bounded:
    """At most `limit` distinct values of one label; the rest are `_other`."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return OTHER
        self.seen.add(value)
        return value


def _parent_name(key: str) -> str:
    """The last segment of the step above `key` (`/a/writer#0/model#1` -> `writer#0`)."""
    parts = key.rsplit("/", 2)
    return parts[-2] if len(parts) == 3 else ""


def _name_of(segment: str) -> str:
    """The name in one segment of a step key (`writer#0` -> `writer`); a tool call waiting
    for approval is named by a hash (`approval.<hash>`), which would be a series per call."""
    name = segment.rsplit("#", 1)[0]
    return "approval" if name.startswith("approval.") else name


class Metrics:
    """Counters, histograms and gauges of runs in one `CollectorRegistry` (a new one unless
    given: never the process-global default, so two runtimes, or tests, never mix)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, max_label_values: int = 500
    ) -> None:
        pc = _require()
        self.registry: CollectorRegistry = registry or pc.CollectorRegistry(auto_describe=True)
        # one bound per kind of name: agents, models, tools, circuits
        self._agent = _Bounded(max_label_values)
        self._model = _Bounded(max_label_values)
        self._tool = _Bounded(max_label_values)
        self._circuit = _Bounded(max_label_values)
        r = self.registry
        self.runs = pc.Counter(
            "podium_runs",
            "Runs that started, resumed, or ended in a status.",
            ["status"],
            registry=r,
        )
        self.step_seconds = pc.Histogram(
            "podium_step_duration_seconds",
            "How long steps took, by the step's agent (or tool, or model) name.",
            ["agent", "kind", "outcome"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.tokens = pc.Counter(
            "podium_tokens",
            "Tokens spent, by agent and model.",
            ["agent", "model", "direction"],
            registry=r,
        )
        self.cost = pc.Counter(
            "podium_cost_usd",
            "Dollars spent, by agent and model.",
            ["agent", "model"],
            registry=r,
        )
        self.retries = pc.Counter(
            "podium_step_retries", "Step attempts retried, by agent.", ["agent"], registry=r
        )
        self.denials = pc.Counter(
            "podium_policy_denials",
            "Tool calls a policy refused, by tool.",
            ["tool"],
            registry=r,
        )
        self.breaker_state = pc.Gauge(
            "podium_breaker_state",
            "Circuit breaker state: 0 closed, 1 half open, 2 open.",
            ["circuit"],
            registry=r,
        )
        self.breaker_moves = pc.Counter(
            "podium_breaker_transitions",
            "Circuit breaker transitions.",
            ["circuit", "to"],
            registry=r,
        )
        self.breaker_rejections = pc.Counter(
            "podium_breaker_rejections",
            "Calls refused while a circuit was open.",
            ["circuit"],
            registry=r,
        )
        self.stored_runs = pc.Gauge(
            "podium_stored_runs",
            "Runs in the store, by status (read when scraped).",
            ["status"],
            registry=r,
        )
        self.waiting = pc.Gauge(
            "podium_runs_waiting",
            "Runs waiting for a person or the outside world.",
            registry=r,
        )
        self.dlq = pc.Gauge("podium_dlq_size", "Runs in the dead-letter queue.", registry=r)
        # label children by their raw names: the hot path (two events per step) looks one
        # dict up instead of building label tuples under the metric's lock
        self._timers: dict[tuple[str, str, bool], Any] = {}
        self._run_counters: dict[str, Any] = {}
        # per run, while it runs: step key -> (kind, model) from `step.started`
        self._open: dict[str, dict[str, tuple[str, str]]] = {}

    # the listener ---------------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        """Count one event (a `Runtime(on_event=...)` / `subscribe` listener)."""
        kind = event.kind
        if kind.startswith("step."):
            self._step(event)
        elif kind in _RUN_KINDS:
            counter = self._run_counters.get(kind)
            if counter is None:
                counter = self._run_counters[kind] = self.runs.labels(_RUN_KINDS[kind])
            counter.inc()
            if kind in _ENDS:
                self._open.pop(event.run_id, None)
        elif kind == "policy.denied":
            tool = str((event.data or {}).get("tool", "") or event.agent)
            self.denials.labels(self._tool(_name_of(tool))).inc()
        elif kind.startswith("breaker."):
            self._breaker(event)

    def _step(self, event: Event) -> None:
        kind = event.kind
        if kind == "step.started":
            data = event.data or {}
            step_kind = str(data.get("kind", "agent"))
            if step_kind != "agent":
                self._open.setdefault(event.run_id, {})[event.key] = (
                    step_kind,
                    str(data.get("model", "")),
                )
            return
        if kind == "step.retried":
            step_kind = self._open.get(event.run_id, {}).get(event.key, ("agent", ""))[0]
            raw = _parent_name(event.key) if step_kind == "model" else event.agent
            self.retries.labels(self._agent(_name_of(raw))).inc()
            return
        if kind not in ("step.completed", "step.failed"):
            return
        started = self._open.get(event.run_id)
        step_kind, model = ("agent", "")
        if started is not None:
            step_kind, model = started.pop(event.key, ("agent", ""))
        done = kind == "step.completed"
        if event.duration is not None:
            # a model step is named `model`: its agent is the one that asked
            raw = _parent_name(event.key) if step_kind == "model" else event.agent
            where = (raw, step_kind, done)
            timer = self._timers.get(where)
            if timer is None:
                outcome = "completed" if done else "failed"
                name = self._agent(_name_of(raw))
                timer = self.step_seconds.labels(name, step_kind, outcome)
                if len(self._timers) < _CACHED:  # raw names may be many (approval.<hash>)
                    self._timers[where] = timer
            timer.observe(event.duration)
        usage = event.usage
        if usage is None or step_kind == "agent":
            return
        name = self._agent(_name_of(event.agent))
        agent = self._agent(_name_of(_parent_name(event.key)) or name)
        model = self._model(model or name)
        if usage.input_tokens:
            self.tokens.labels(agent, model, "input").inc(usage.input_tokens)
        if usage.output_tokens:
            self.tokens.labels(agent, model, "output").inc(usage.output_tokens)
        if usage.usd:
            self.cost.labels(agent, model).inc(usage.usd)

    def _breaker(self, event: Event) -> None:
        circuit = self._circuit(str((event.data or {}).get("circuit", event.agent)))
        if event.kind == "breaker.rejected":
            self.breaker_rejections.labels(circuit).inc()
            return
        state = _BREAKER.get(event.kind)
        if state is not None:
            self.breaker_state.labels(circuit).set(state)
            self.breaker_moves.labels(circuit, event.kind.split(".", 1)[1]).inc()

    # scraping -------------------------------------------------------------------------------
    async def refresh(self, store: Store) -> None:
        """Read the gauges that live in the store: runs by status, waiting runs, DLQ size."""
        for status in RunStatus:
            runs = await store.list_runs(status=status, limit=2**62)
            self.stored_runs.labels(status.value).set(len(runs))
            if status == RunStatus.WAITING:
                self.waiting.set(len(runs))
        kv_list = getattr(store, "kv_list", None)
        if kv_list is not None:
            self.dlq.set(len(await kv_list(DLQ_NAMESPACE)))

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format, as it is now."""
        return bytes(_require().generate_latest(self.registry))

    async def scrape(self, store: Store | None = None) -> bytes:
        """What `/metrics` serves: the store's gauges read now (when given), then the
        exposition text. Its content type is `CONTENT_TYPE`."""
        if store is not None:
            await self.refresh(store)
        return self.exposition()

    @property
    def content_type(self) -> str:
        return str(_require().CONTENT_TYPE_LATEST)


async def metrics_text(store: Store) -> str:
    """The exposition text of a store's state alone (what `podium metrics` prints)."""
    return (await Metrics().scrape(store)).decode()
