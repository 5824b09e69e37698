"""Printing the table, writing the JSON and drawing the chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGET_NAMES = {"floor": "bare floor", "baseline": "hand-written", "stubber": "flask-stubber"}


def _ratio(value: float, base: float) -> str:
    return f"{value / base:5.2f}x" if base else "   - "


def _rows(title: str, header: list[str], rows: list[list[Any]]) -> list[str]:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return ["", title, line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def table(results: dict[str, Any]) -> str:
    """Return the results as plain-text tables; every figure also as a ratio to the hand-written view."""
    out: list[str] = [f"machine: {results['machine']['cpus']} CPUs, load average {results['machine']['load_before']}"
                      f" before, {results['machine'].get('load_after', '?')} after"]
    for db, by_target in results.get("inprocess", {}).items():
        rows = []
        for workload in ("transition", "update"):
            base = by_target["baseline"][workload]
            for target in ("floor", "baseline", "stubber"):
                f = by_target[target][workload]
                rows.append([workload, TARGET_NAMES[target], f["mean_us"], _ratio(f["mean_us"], base["mean_us"]),
                             f["p50_us"], f["p99_us"], f["round_trips"]["statements"],
                             f["round_trips"].get("protocol_round_trips", f["round_trips"]["round_trips"]),
                             f["errors"]])
        out += _rows(f"in-process, Flask test client, {db}: microseconds per webhook (lower is better)",
                     ["workload", "endpoint", "mean us", "x hand", "p50 us", "p99 us", "statements",
                      "round trips", "errors"], rows)
    for db, run in results.get("http", {}).items():
        rows = []
        res = run["results"]
        for c in sorted(res["stubber"], key=int):
            base = res["baseline"][c]
            for target in ("floor", "baseline", "stubber"):
                f = res[target][c]
                cpu = f.get("cpu_us_per_request", {})
                rows.append([c, TARGET_NAMES[target], f"{f['rps']:.0f}", _ratio(f["rps"], base["rps"]),
                             f"{f['p50_ms']:.2f}", f"{f['p95_ms']:.2f}", f"{f['p99_ms']:.2f}",
                             _ratio(f["p99_ms"], base["p99_ms"]), f["errors"], cpu.get("workers", "-"),
                             cpu.get("postgresql", "-") if db == "postgresql" else "-"])
        server = run["server"]
        out += _rows(f"HTTP, gunicorn {server['workers']} x {server['worker_class']} workers"
                     f" ({server['threads']} thread), wrk, {db}, {run['duration']} s x {run['rounds']} rounds (median)",
                     ["conns", "endpoint", "req/s", "x hand", "p50 ms", "p95 ms", "p99 ms", "p99 x hand", "errors",
                      "CPU us/req gunicorn", "CPU us/req postgres"], rows)
    for db, flat in results.get("flat", {}).items():
        sizes = flat["sizes"]
        first = next(iter(sizes.values()))
        rows = [[f"{int(size):,}", f["mean_us"], _ratio(f["mean_us"], first["mean_us"]), f["p50_us"], f["p99_us"],
                 f["load_seconds"]] for size, f in sizes.items()]
        posts = flat["posts"]
        rows.append([f"1 stub, {posts['posts']:,} posts", posts["with_posts"]["mean_us"],
                     _ratio(posts["with_posts"]["mean_us"], posts["without_posts"]["mean_us"]),
                     posts["with_posts"]["p50_us"], posts["with_posts"]["p99_us"], "-"])
        out += _rows(f"flat cost, {db}: flask-stubber microseconds per update webhook on random stubs, by table size"
                     " (ratio to the smallest; the posts row: ratio to a stub without posts)",
                     ["stubs", "mean us", "ratio", "p50 us", "p99 us", "load s"], rows)
    for db, memory in results.get("memory", {}).items():
        points = list(memory.items())
        rows = [[f"{m['webhooks']:,}", f"{m['peak_rss_kib'] / 1024:.1f}", f"{m['rss_kib'] / 1024:.1f}",
                 f"{(m['peak_rss_kib'] - points[0][1]['peak_rss_kib']) / 1024:+.1f}", m["errors"]] for n, m in points]
        server = results["settings"]
        out += _rows(f"memory, {db}: one gunicorn {server['worker_class']} worker ({server['threads']} threads)"
                     " running flask-stubber webhooks",
                     ["webhooks", "peak RSS MiB", "RSS MiB", "growth MiB", "errors"], rows)
    out += ["", "targets:"] + [f"  {t}" for t in targets(results)]
    return "\n".join(out)


def targets(results: dict[str, Any]) -> list[str]:
    """Return one line per target of the benchmark issue: the figure and whether it was met."""
    lines = []
    http = results.get("http", {}).get("postgresql")
    if http:
        res = http["results"]
        for c in sorted(res["stubber"], key=int):
            # The rounds ran the endpoints in turns: compare within each round, keep the median.
            rounds = zip(*(res[t][c]["rps_samples"] for t in ("stubber", "baseline", "floor")), strict=True)
            ratios = sorted((s / b, s / f) for s, b, f in rounds)
            hand, floor = ratios[len(ratios) // 2]
            lines.append(f"PostgreSQL c={c}: {hand:.2f}x the hand-written req/s (target 2x: {_met(hand >= 1.995)}), "
                         f"{floor:.2f} of the bare floor (target 0.33: {_met(floor >= 0.33)});"
                         f" rounds {', '.join(f'{h:.2f}x' for h, _ in ratios)}")
    for db, flat in results.get("flat", {}).items():
        sizes = list(flat["sizes"].values())
        change = sizes[-1]["mean_us"] / sizes[0]["mean_us"] - 1
        largest = list(flat["sizes"])[-1]
        lines.append(f"{db} flat cost: {int(largest):,} stubs {change:+.0%} vs the smallest (target within 10%:"
                     f" {_met(abs(change) <= 0.10)})")
    for db, memory in results.get("memory", {}).items():
        points = list(memory.items())
        growth = (points[-1][1]["peak_rss_kib"] - points[0][1]["peak_rss_kib"]) / 1024
        lines.append(f"{db} memory: peak RSS {growth:+.1f} MiB from {points[0][1]['webhooks']:,} to"
                     f" {points[-1][1]['webhooks']:,}"
                     f" webhooks (target no growth beyond noise, 2 MiB: {_met(growth <= 2)})")
    return lines


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def write_json(results: dict[str, Any], directory: Path, stamp: str) -> Path:
    """Write ``results`` to ``directory/bench-<stamp>.json`` and ``latest.json``; return the first path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bench-{stamp}.json"
    text = json.dumps(results, indent=2, sort_keys=True)
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    return path


def chart(results: dict[str, Any], path: Path) -> Path | None:
    """Draw requests/s and p99 latency against concurrency for every endpoint; return the PNG path."""
    http = results.get("http")
    if not http:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"floor": "#999999", "baseline": "#d95f02", "stubber": "#1b9e77"}
    styles = {"postgresql": "-", "sqlite": "--"}
    for db, run in http.items():
        for target, by_c in run["results"].items():
            cs = sorted(by_c, key=int)
            xs = [int(c) for c in cs]
            label = f"{TARGET_NAMES[target]} ({db})"
            style = dict(color=colors[target], linestyle=styles.get(db, ":"), marker="o")
            left.plot(xs, [by_c[c]["rps"] for c in cs], label=label, **style)
            right.plot(xs, [by_c[c]["p99_ms"] for c in cs], label=label, **style)
    for axis, title, unit in ((left, "throughput", "requests/s (log)"), (right, "p99 latency", "ms (log)")):
        axis.set_xscale("log", base=2)
        axis.set_xticks([1, 16, 64], ["1", "16", "64"])
        axis.set_xlabel("concurrent connections")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
    left.set_yscale("log")
    right.set_yscale("log")
    left.legend(fontsize=7)
    machine = results["machine"]
    figure.suptitle(f"flask-stubber vs a hand-written Flask view, gunicorn + wrk, {machine['cpus']} CPUs", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
