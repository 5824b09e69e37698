"""``python -m bench``: run the benchmarks, print the table, write JSON and the chart.

See ``python -m bench --help`` and ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

from . import report
from .data import postgresql_database
from .http import find_wrk, run_http, run_memory
from .inprocess import run_flat, run_inprocess

PARTS = ("inprocess", "http", "flat", "memory")
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "requests": 1000, "warmup": 200, "duration": 5.0, "rounds": 1, "http_databases": "postgresql",
        "flat_sizes": "1000,100000", "flat_requests": 500, "memory": "1000,10000",
    },
    "full": {
        "requests": 5000, "warmup": 500, "duration": 10.0, "rounds": 3, "http_databases": "postgresql,sqlite",
        "flat_sizes": "1000,100000,1000000", "flat_requests": 2000, "memory": "10000,100000",
    },
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark flask-stubber against a hand-written Flask view and a bare Flask endpoint.",
    )
    parser.add_argument("--quick", action="store_true", help="a run of a few minutes (default: the full run)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="databases for the in-process and flat-cost parts (postgresql needs --postgresql-url)")
    parser.add_argument("--postgresql-url", default=os.environ.get("BENCH_POSTGRESQL_URL"),
                        help="server and database name to use, e.g. postgresql+psycopg://postgres@127.0.0.1/stubber_bench;"
                             " the database and <name>_flat are created (dropped first) and dropped at the end"
                             " (default: $BENCH_POSTGRESQL_URL)")
    parser.add_argument("--http-databases", help="databases served over HTTP (quick: postgresql; full: both)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="gunicorn workers (default: one per CPU)")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (default: gthread)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default: 4)")
    parser.add_argument("--concurrency", default="1,16,64", help="wrk connections (default: 1,16,64)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (quick: 5, full: 10)")
    parser.add_argument("--rounds", type=int,
                        help="interleaved rounds of HTTP runs; the median is kept (quick: 1, full: 3)")
    parser.add_argument("--requests", type=int, help="in-process webhooks per figure (quick: 1000, full: 5000)")
    parser.add_argument("--warmup", type=int, help="in-process warm-up webhooks per endpoint")
    parser.add_argument("--flat-sizes", help="table sizes for the flat-cost part (full: 1000,100000,1000000)")
    parser.add_argument("--flat-requests", type=int, help="webhooks timed per table size")
    parser.add_argument("--posts", type=int, default=10000, help="posts on the one stub of the flat-cost part")
    parser.add_argument("--memory", help="webhook counts at which a worker's peak RSS is read (full: 10000,100000)")
    parser.add_argument("--max-rps", type=int, default=4000,
                        help="stubs loaded per wrk run = duration x this; raise it if a run reports 'exhausted'")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results"),
                        help="directory for the JSON and the chart (default: bench/results)")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart (no matplotlib needed)")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="run nothing: print the tables of a results file and draw its chart next to it")
    args = parser.parse_args(argv)
    for key, value in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def _list(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


def machine() -> dict[str, Any]:
    """Describe the machine and the versions the figures were measured with."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "packages": {name: version(name) for name in (
            "flask", "flask-sqlalchemy", "sqlalchemy", "marshmallow", "psycopg", "gunicorn", "flask-stubber")},
    }
    try:
        info["wrk"] = subprocess.run([find_wrk(), "--version"], capture_output=True, text=True).stdout.split(" [")[0]
    except RuntimeError:
        info["wrk"] = None
    return info


class Databases:
    """Hands out a fresh database per part: a SQLite file, or a PostgreSQL database created and dropped."""

    def __init__(self, postgresql_url: str | None, scratch: Path) -> None:
        self.postgresql_url = postgresql_url
        self.scratch = scratch

    def open(self, db: str, suffix: str = "") -> AbstractContextManager[str]:
        if db == "sqlite":
            return self._sqlite(suffix)
        if db == "postgresql":
            if not self.postgresql_url:
                raise SystemExit("PostgreSQL needs --postgresql-url or BENCH_POSTGRESQL_URL.")
            from sqlalchemy import make_url

            name = make_url(self.postgresql_url).database or "stubber_bench"
            return postgresql_database(self.postgresql_url, name + suffix)
        raise SystemExit(f"Unknown database {db!r}: use sqlite or postgresql.")

    @contextmanager
    def _sqlite(self, suffix: str) -> Iterator[str]:
        path = self.scratch / f"bench{suffix}.db"
        for old in self.scratch.glob(f"bench{suffix}.db*"):
            old.unlink()
        yield f"sqlite:///{path}"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report is not None:
        results = json.loads(args.report.read_text())
        print(report.table(results))
        if not args.no_chart:
            print(f"chart: {report.chart(results, args.report.with_suffix('.png'))}")
        return 0
    parts = _list(args.parts)
    databases = [d for d in _list(args.databases) if d != "postgresql" or args.postgresql_url]
    http_databases = [d for d in _list(args.http_databases) if d != "postgresql" or args.postgresql_url]
    results: dict[str, Any] = {"machine": machine(), "settings": {k: str(v) for k, v in vars(args).items()}}
    started = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="stubber-bench-") as scratch:
        dbs = Databases(args.postgresql_url, Path(scratch))

        def section(part: str, db: str, run: Callable[[str], Any]) -> None:
            print(f"== {part} on {db}", flush=True)
            with dbs.open(db) as url:
                results.setdefault(part, {})[db] = run(url)
            report.write_json(results, args.output, stamp)  # what is done so far survives a failure

        if "inprocess" in parts:
            for db in databases:
                section("inprocess", db, lambda url: run_inprocess(url, args.requests, args.warmup))
        if "http" in parts:
            for db in http_databases:
                section("http", db, lambda url: run_http(
                    url, concurrencies=[int(c) for c in _list(args.concurrency)], duration=args.duration,
                    rounds=args.rounds, workers=args.workers, worker_class=args.worker_class,
                    threads=args.threads, max_rps=args.max_rps))
        if "flat" in parts:
            sizes = [int(s) for s in _list(args.flat_sizes)]
            for db in databases:
                print(f"== flat on {db}", flush=True)
                results.setdefault("flat", {})[db] = run_flat(
                    lambda suffix, db=db: dbs.open(db, suffix), sizes, args.flat_requests, args.posts)
                report.write_json(results, args.output, stamp)
        if "memory" in parts:
            checkpoints = [int(n) for n in _list(args.memory)]
            memory_db = "postgresql" if "postgresql" in databases else databases[0]
            section("memory", memory_db, lambda url: run_memory(
                url, checkpoints, worker_class=args.worker_class, threads=args.threads))
    results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.monotonic() - started)
    path = report.write_json(results, args.output, stamp)
    print(report.table(results))
    print(f"\nJSON: {path}")
    if not args.no_chart:
        png = report.chart(results, args.output / f"bench-{stamp}.png")
        if png is not None:
            print(f"chart: {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
