"""Prometheus text exposition for `/metrics`, without a client library.

Labels are route templates, methods, status codes, rule ids and outcomes: never a path
with ids filled in, never PHI, never an organization name.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import func, select

from carecollect.db import Database

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# A collector returns (metric name, help, type, [(labels, value)]) families at scrape time;
# the work queue, channels and compliance engine register theirs here.
Family = tuple[str, str, str, list[tuple[dict[str, str], float]]]
Collector = Callable[[], Iterable[Family]]


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(labels.items())
    )
    return "{" + body + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._latency_counts: dict[tuple[str, str], list[int]] = {}
        self._latency_sum: dict[tuple[str, str], float] = defaultdict(float)
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._help: dict[str, str] = {}
        self._collectors: list[Collector] = []

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        with self._lock:
            self._requests[(method, route, str(status))] += 1
            counts = self._latency_counts.setdefault(key, [0] * (len(LATENCY_BUCKETS) + 1))
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    counts[index] += 1
            counts[-1] += 1
            self._latency_sum[key] += seconds

    def increment(self, name: str, help_text: str, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._help[name] = help_text
            self._counters[(name, tuple(sorted(labels.items())))] += amount

    def register(self, collector: Collector) -> None:
        self._collectors.append(collector)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            lines += [
                "# HELP carecollect_http_requests_total HTTP requests by route and status.",
                "# TYPE carecollect_http_requests_total counter",
            ]
            for (method, route, status), count in sorted(self._requests.items()):
                labels = _labels({"method": method, "route": route, "status": status})
                lines.append(f"carecollect_http_requests_total{labels} {count}")
            lines += [
                "# HELP carecollect_http_request_duration_seconds Request latency.",
                "# TYPE carecollect_http_request_duration_seconds histogram",
            ]
            bucket = "carecollect_http_request_duration_seconds_bucket"
            for (method, route), counts in sorted(self._latency_counts.items()):
                base = {"method": method, "route": route}
                for bound, count in zip(LATENCY_BUCKETS, counts, strict=False):
                    labels = _labels({**base, "le": repr(bound)})
                    lines.append(f"{bucket}{labels} {count}")
                labels = _labels({**base, "le": "+Inf"})
                lines.append(f"{bucket}{labels} {counts[-1]}")
                lines.append(
                    f"carecollect_http_request_duration_seconds_sum{_labels(base)} "
                    f"{self._latency_sum[(method, route)]:.6f}"
                )
                lines.append(
                    f"carecollect_http_request_duration_seconds_count{_labels(base)} {counts[-1]}"
                )
            by_name: dict[str, list[tuple[tuple[tuple[str, str], ...], float]]] = defaultdict(list)
            for (name, labels_tuple), value in self._counters.items():
                by_name[name].append((labels_tuple, value))
            for name in sorted(by_name):
                lines += [f"# HELP {name} {self._help[name]}", f"# TYPE {name} counter"]
                for labels_tuple, value in sorted(by_name[name]):
                    lines.append(f"{name}{_labels(dict(labels_tuple))} {value:g}")
            collectors = list(self._collectors)
        for collector in collectors:
            for name, help_text, kind, samples in collector():
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                lines += [f"{name}{_labels(labels)} {value:g}" for labels, value in samples]
        return "\n".join(lines) + "\n"



def queue_collector(db: Database, clock: Callable[[], datetime]) -> Collector:
    """Queue depth by queue and state, and lag (age of the oldest due, unclaimed job), read
    from the job table at scrape time. Queue names and states only: no ids, no args."""
    from carecollect.kit.jobs.models import Job

    def collect() -> list[Family]:
        now = clock()
        with db.engine.connect() as conn:
            depth = conn.execute(
                select(Job.queue, Job.state, func.count()).group_by(Job.queue, Job.state)
            ).all()
            oldest = conn.execute(
                select(Job.queue, func.min(Job.scheduled_at))
                .where(Job.state == "available", Job.scheduled_at <= now)
                .group_by(Job.queue)
            ).all()
        lag: list[tuple[dict[str, str], float]] = []
        for queue, scheduled in oldest:
            raw: object = scheduled  # SQLite aggregates lose the column type: text
            when = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
            if when.tzinfo is None:  # SQLite aggregates lose the column type
                when = when.replace(tzinfo=UTC)
            lag.append(({"queue": str(queue)}, max((now - when).total_seconds(), 0.0)))
        jobs = [({"queue": str(q), "state": str(s)}, float(n)) for q, s, n in depth]
        return [
            ("carecollect_queue_jobs", "Jobs by queue and state.", "gauge", jobs),
            ("carecollect_queue_lag_seconds",
             "Age of the oldest due job not yet claimed, per queue.", "gauge", lag),
        ]

    return collect
