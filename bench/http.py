"""Over HTTP: gunicorn serving the benchmark app, wrk driving it from its own process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .app import BODIES, create_app
from .data import TABLES, load_stubs, reset_tables
from .inprocess import PATHS

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).with_name("wrk.lua")
#: The targets, in the order each round runs them.
TARGETS = ("floor", "baseline", "stubber")


def find_wrk() -> str:
    """Return the path of ``wrk``, or raise with how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("The HTTP benchmark needs wrk: apt-get install wrk (or skip it with --parts).")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(
    url: str, *, workers: int, worker_class: str, threads: int
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve the benchmark app on ``url``'s database; yield the base URL and the master process."""
    port = _free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", worker_class,
        "--threads", str(threads), "--bind", f"127.0.0.1:{port}", "--backlog", "2048",
        "--log-level", "warning", "--timeout", "120", "bench.app:create_app()",
    ]
    env = {**os.environ, "BENCH_DATABASE_URL": url}
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start; see its output above.") from None
                time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wrk(
    base: str, target: str, action: str, *, connections: int, duration: float, first: int, stubs: int
) -> dict[str, Any]:
    """Run wrk against ``target`` with one thread and ``connections`` connections; return its figures."""
    prefix, suffix = PATHS[target].format(ref="\x00", action=action).split("\x00")
    command = [
        find_wrk(), "--threads", "1", "--connections", str(connections), "--duration", f"{max(1, round(duration))}s",
        "--timeout", "30s", "--script", str(LUA), base, "--",
        prefix, suffix, str(first), str(stubs), json.dumps(BODIES[action]),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 120)
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    raw = json.loads(line)
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw["errors"].values())
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1),
        "errors": errors,
        "error_kinds": {k: v for k, v in raw["errors"].items() if v},
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p95_ms": raw["latency_us"]["p95"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "exhausted": raw["requests"] >= stubs,
    }


def run_http(
    url: str,
    *,
    concurrencies: list[int],
    duration: float,
    rounds: int,
    workers: int,
    worker_class: str,
    threads: int,
    max_rps: int,
) -> dict[str, Any]:
    """Measure every target at every concurrency, ``rounds`` times interleaved; keep each median round."""
    find_wrk()
    budget = int(duration * max_rps)
    runs = rounds * len(concurrencies) + 1
    app = create_app(url)
    with app.app_context():
        reset_tables()
        for stub_table, _ in TABLES.values():
            load_stubs(stub_table, 0, runs * budget)
        from .data import db

        db.engine.dispose()
    samples: dict[str, dict[int, list[dict[str, Any]]]] = {t: {c: [] for c in concurrencies} for t in TARGETS}
    with gunicorn(url, workers=workers, worker_class=worker_class, threads=threads) as (base, master):
        for target in TARGETS:  # warm every worker up: imports, connections, statement caches
            wrk(base, target, "payment_received", connections=16, duration=2, first=0, stubs=budget)
        cpu = CpuMeter(master, url)
        run = 1
        for _ in range(rounds):
            for connections in concurrencies:
                for target in TARGETS:
                    before = cpu.read()
                    figures = wrk(
                        base, target, "payment_received", connections=connections, duration=duration,
                        first=run * budget, stubs=budget if target != "floor" else 10**9,
                    )
                    figures["cpu_us_per_request"] = cpu.per_request(before, figures["requests"])
                    samples[target][connections].append(figures)
                    print(f"  {target:8} c={connections:<3} {figures['rps']:8.1f} req/s"
                          f"  p99 {figures['p99_ms']:7.2f} ms  errors {figures['errors']}", flush=True)
                run += 1
    return {
        "server": {"workers": workers, "worker_class": worker_class, "threads": threads},
        "duration": duration,
        "rounds": rounds,
        "results": {
            target: {str(c): _median(samples[target][c]) for c in concurrencies} for target in TARGETS
        },
    }


class CpuMeter:
    """Reads the CPU time of the gunicorn workers and of the PostgreSQL backends serving them.

    The backends are the connections to the benchmark's own database (other databases on
    the same server are not counted); SQLite has none.
    """

    def __init__(self, master: subprocess.Popen[bytes], url: str) -> None:
        self.master = master
        self.tick = os.sysconf("SC_CLK_TCK")
        self.backends: list[int] = []
        if url.startswith("postgresql"):
            from sqlalchemy import create_engine, make_url, text

            engine = create_engine(url)
            with engine.connect() as conn:
                name = make_url(url).database
                self.backends = list(conn.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                    {"d": name},
                ).scalars())
            engine.dispose()

    def _ticks(self, pids: list[int]) -> int:
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total

    def read(self) -> tuple[int, int]:
        """Return the CPU ticks used so far by the workers and by the backends."""
        workers = [int(p) for p in Path(f"/proc/{self.master.pid}/task/{self.master.pid}/children").read_text().split()]
        return self._ticks(workers), self._ticks(self.backends)

    def per_request(self, before: tuple[int, int], requests: int) -> dict[str, float]:
        """Return the CPU microseconds per request of the workers and of the backends since ``before``."""
        after = self.read()
        scale = 1e6 / self.tick / max(requests, 1)
        return {"workers": round((after[0] - before[0]) * scale), "postgresql": round((after[1] - before[1]) * scale)}


def _median(samples: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(samples, key=lambda s: s["rps"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["rps_samples"] = [s["rps"] for s in samples]
    return chosen


def _worker_memory(master: subprocess.Popen[bytes]) -> dict[str, int]:
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    status = Path(f"/proc/{children[0]}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) for key in ("VmHWM", "VmRSS")}


def run_memory(
    url: str, checkpoints: list[int], *, worker_class: str, threads: int, connections: int = 16, chunk: float = 5.0
) -> dict[str, Any]:
    """Send webhooks to one worker and read its peak RSS (VmHWM) once it has answered each checkpoint.

    wrk runs for ``chunk`` seconds at a time until the worker has answered at least the next
    checkpoint's number of webhooks (the count reported is the exact one reached).
    """
    find_wrk()
    app = create_app(url)
    slack = 2 * connections
    with app.app_context():
        reset_tables()
        load_stubs(TABLES["stubber"][0], 0, int(checkpoints[-1] * 1.1) + 10_000)
        from .data import db

        db.engine.dispose()
    results: dict[str, Any] = {}
    with gunicorn(url, workers=1, worker_class=worker_class, threads=threads) as (base, master):
        answered = errors = first = 0
        for checkpoint in checkpoints:
            while answered < checkpoint:
                figures = wrk(base, "stubber", "payment_received", connections=connections, duration=chunk,
                              first=first, stubs=10**9)
                answered += figures["requests"]
                errors += figures["errors"]
                first += figures["requests"] + slack
            memory = _worker_memory(master)
            results[str(checkpoint)] = {
                "webhooks": answered, "peak_rss_kib": memory["VmHWM"], "rss_kib": memory["VmRSS"], "errors": errors,
            }
            print(f"  after {answered:>7} webhooks: peak RSS {memory['VmHWM'] / 1024:.1f} MiB", flush=True)
    return results
