#!/usr/bin/env python3
"""What observing costs: Prometheus metrics on vs off, data capture at 0 % vs 100 %, a /metrics scrape with many
endpoints, and the core paths against another (older) Serval binary, all in the same run.

1. Overhead: two Serval processes serve bench.py's LogisticRegression (20 features, batching 32/2 ms): one with
   `--no-metrics`, one with metrics on, which also serves an endpoint capturing 100 % of invocations (input and
   output). wrk loads the SageMaker path at concurrency 64, the cells interleaved over --rounds rounds so that a
   drift of the machine hits every cell alike; the report gives the median req/s of each cell and its ratio to
   metrics-off (goals: metrics on >= 0.97, capture 100 % >= 0.90 of capture 0 %).
2. Scrape: the metrics-on process gets --endpoints endpoints more (one worker each), each invoked once; then
   /metrics is scraped --scrapes times and its latency (p50, max) and size are reported (goal: under 10 ms).
3. Core paths against --baseline (a serval binary built from another commit, e.g. the one before metrics): the
   SageMaker path, OIP REST JSON and (with --grpc-load) OIP gRPC at c=64, interleaved, as ratios to the baseline.

It prints figures and ratios and never asserts on them. Raw results go to bench/results/metrics-*.json. Run it
through `bench/run.sh metrics`, which provides the Python environment, wrk and the release build.
"""

import argparse
import datetime
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench import (cpu_busy, finish_run, http_json, instances_body, log, lua_script, MAX_BATCH, MAX_DELAY_MS,
                   _on_signal, REPO_DIR, run_grpc_load, run_wrk, save_results, serval_info, Server, started, Target,
                   train_models, v2_body, versions, wait_for_log_line)


def worker_path(binary):
    """The Python worker that belongs to a Serval binary: the python/ of the checkout it was built in (the nearest
    folder above it that holds python/serval_worker), else this checkout's."""
    for folder in Path(os.path.abspath(binary)).parents:
        if (folder / "python" / "serval_worker").is_dir():
            return folder / "python"
    return REPO_DIR / "python"


def serve(ctx, binary, label, extra=()):
    """Starts a Serval process with its own checkout's worker; returns (server, base URL, gRPC port)."""
    data_dir = ctx.tmp / f"{label}-data"
    server = Server(f"serval ({label})",
                    [binary, "serve", "--host", "127.0.0.1", "--port", 0, "--grpc-port", 0, "--s3-port", 0,
                     "--data-dir", data_dir, "--python", sys.executable, "--worker-path", worker_path(binary),
                     "--model-source-root", ctx.tmp / "packages", *extra],
                    ctx.tmp / f"{label}.log")
    http = wait_for_log_line(server, r"Serval is listening on http://([\d.]+):(\d+)", ctx.start_timeout)
    grpc = wait_for_log_line(server, r"Serval gRPC is listening on [\d.]+:(\d+)", ctx.start_timeout)
    return server, f"http://{http.group(1)}:{http.group(2)}", int(grpc.group(1))


def deploy(ctx, base, server, name, package, capture=None):
    """A model, a config with batching 32/2 ms (and data capture when given) and an endpoint; waits for it."""
    http_json("POST", f"{base}/models", {"name": name, "modelDataUrl": str(package)})
    config = {"name": name, "variants": [{"model": name, "instanceCount": 1, "maxBatchSize": MAX_BATCH,
                                          "maxQueueDelayMs": MAX_DELAY_MS}]}
    if capture is not None:
        config["dataCapture"] = {"destination": "s3://capture/bench", "samplingPercentage": capture}
    http_json("POST", f"{base}/endpoint-configs", config)
    http_json("POST", f"{base}/endpoints", {"name": name, "config": name})


def wait_in_service(ctx, base, server, names):
    deadline = time.monotonic() + ctx.start_timeout
    for name in names:
        while True:
            if server.exited():
                raise RuntimeError(f"{server.name} exited while deploying {name}:\n{server.log_tail()}")
            status = http_json("GET", f"{base}/endpoints/{name}").get("status")
            if status == "InService":
                break
            if status == "Failed" or time.monotonic() > deadline:
                raise RuntimeError(f"endpoint {name} is {status}")
            time.sleep(0.2)


def sagemaker_target(label, base, name, row):
    return Target(label, name, f"{base}/endpoints/{name}/invocations", "instances", instances_body(row),
                  {"Content-Type": "application/json"})


def load(ctx, target):
    target.check(ctx)
    if target.kind == "grpc":
        return run_grpc_load(ctx, target, ctx.concurrency, ctx.seconds, 0.5)
    return run_wrk(target.url, lua_script(ctx, target), ctx.concurrency, ctx.seconds)


def interleaved(ctx, cells):
    """Runs every cell once per round, in order; returns each cell's runs."""
    runs = {label: [] for label, _ in cells}
    for round_index in range(ctx.rounds):
        for label, target in cells:
            result = load(ctx, target)
            runs[label].append(result)
            log(f"  round {round_index + 1} {label:<28} {result['rps'] or 0:>9.0f} req/s  p99 {result['p99_ms'] or 0:.2f} ms"
                f"  errors {result['errors']}")
    return runs


def summary(runs):
    rates = [run["rps"] or 0 for run in runs]
    return {"median_rps": statistics.median(rates), "rps": rates, "p99_ms": [run["p99_ms"] for run in runs],
            "errors": sum(run["errors"] for run in runs)}


def overhead(ctx, lr):
    row = lr["row"]
    off, off_base, _ = serve(ctx, ctx.serval, "metrics-off", ["--no-metrics"])
    on, on_base, _ = serve(ctx, ctx.serval, "metrics-on")
    with started(off), started(on):
        deploy(ctx, off_base, off, "lr", lr["package"])
        deploy(ctx, on_base, on, "lr", lr["package"], capture=0)
        deploy(ctx, on_base, on, "lr-capture", lr["package"], capture=100)
        wait_in_service(ctx, off_base, off, ["lr"])
        wait_in_service(ctx, on_base, on, ["lr", "lr-capture"])
        runs = interleaved(ctx, [
            ("metrics off", sagemaker_target("off", off_base, "lr", row)),
            ("metrics on, capture 0 %", sagemaker_target("on", on_base, "lr", row)),
            ("metrics on, capture 100 %", sagemaker_target("on", on_base, "lr-capture", row)),
        ])
        cells = {label: summary(result) for label, result in runs.items()}
        capture = captured(ctx, on_base, "lr-capture")
        scrape = scrape_figures(ctx, on, on_base, lr)
    return {"cells": cells, "scrape": scrape, "capture": capture}


def captured(ctx, base, name):
    """The capture's records written and dropped once the buffer is flushed (a 100 % cell that drops is cheaper
    than one that writes everything, so the figure says which it was)."""
    deadline = time.monotonic() + 30
    while True:
        state = http_json("GET", f"{base}/endpoints/{name}").get("dataCapture") or {}
        time.sleep(6)  # the writer flushes every 5 s: wait until a flush writes nothing more
        again = http_json("GET", f"{base}/endpoints/{name}").get("dataCapture") or {}
        if again == state or time.monotonic() > deadline:
            log(f"  capture of {name}: {again.get('recordsWritten', 0)} records written,"
                f" {again.get('recordsDropped', 0)} dropped; last error: {again.get('lastError') or 'none'}")
            return again


def scrape_figures(ctx, server, base, lr):
    names = [f"lr-{index:03d}" for index in range(ctx.endpoints)]
    log(f"deploying {len(names)} more endpoints for the scrape")
    for name in names:
        deploy(ctx, base, server, name, lr["package"])
    wait_in_service(ctx, base, server, names)
    for name in names:
        sagemaker_target("scrape", base, name, lr["row"]).check(ctx)
    timings, size = [], 0
    for _ in range(ctx.scrapes):
        started_at = time.perf_counter()
        with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
            size = len(response.read())
        timings.append((time.perf_counter() - started_at) * 1e3)
    timings.sort()
    figures = {"endpoints": len(names) + 2, "scrapes": len(timings), "p50_ms": statistics.median(timings),
               "max_ms": timings[-1], "bytes": size}
    log(f"  /metrics with {figures['endpoints']} endpoints: p50 {figures['p50_ms']:.2f} ms, max {figures['max_ms']:.2f} ms,"
        f" {size / 1024:.0f} KiB")
    return figures


def against_baseline(ctx, lr):
    row = lr["row"]
    servers, cells = [], []
    # "unobserved" is the current binary with --no-metrics: what the change costs apart from the metrics.
    for label, binary, flags in (("baseline", ctx.baseline, []), ("current", ctx.serval, []),
                                 ("unobserved", ctx.serval, ["--no-metrics"])):
        server, base, grpc_port = serve(ctx, binary, label, flags)
        servers.append(server)
        deploy(ctx, base, server, "lr", lr["package"])
        wait_in_service(ctx, base, server, ["lr"])
        cells.append((f"{label} SageMaker", sagemaker_target(label, base, "lr", row)))
        cells.append((f"{label} OIP REST JSON", Target(label, "lr", f"{base}/v2/models/lr/infer", "v2",
                                                       v2_body(row, "FP32", ["predict"]),
                                                       {"Content-Type": "application/json"})))
        if ctx.grpc_load:
            cells.append((f"{label} OIP gRPC", Target(label, "lr", f"127.0.0.1:{grpc_port}", "grpc", grpc_args=[
                "--model", "lr", "--input-name", "input-0", "--datatype", "FP32", "--features", len(row), "--rows", 1,
                "--output", "predict"])))
    try:
        # Each protocol's baseline and current cells side by side.
        order = sorted(cells, key=lambda cell: (cell[0].split(" ", 1)[1], cell[0]))
        return {label: summary(result) for label, result in interleaved(ctx, order).items()}
    finally:
        for server in servers:
            server.stop()


def report(results):
    if "overhead" in results:
        report_overhead(results["overhead"])
    if "baseline" in results:
        report_baseline(results["baseline"])


def report_overhead(overhead):
    print("\n== Observing costs (SageMaker path, LogisticRegression, c=64, batching 32/2 ms; median of rounds)")
    cells = overhead["cells"]
    base = cells["metrics off"]["median_rps"]
    capture_base = cells["metrics on, capture 0 %"]["median_rps"]
    for label, cell in cells.items():
        print(f"  {label:<28} {cell['median_rps']:>9.0f} req/s  {cell['median_rps'] / base:.3f}x metrics off"
              f"  errors {cell['errors']}")
    print(f"  capture 100 % / capture 0 %: {cells['metrics on, capture 100 %']['median_rps'] / capture_base:.3f}x"
          " (goal >= 0.90); metrics on / off:"
          f" {capture_base / base:.3f}x (goal >= 0.97)")
    capture = overhead["capture"]
    print(f"  capture 100 % wrote {capture.get('recordsWritten', 0)} records and dropped {capture.get('recordsDropped', 0)}"
          + (f" (last error: {capture['lastError']})" if capture.get("lastError") else ""))
    scrape = overhead["scrape"]
    print(f"  /metrics with {scrape['endpoints']} endpoints: p50 {scrape['p50_ms']:.2f} ms, max {scrape['max_ms']:.2f} ms,"
          f" {scrape['bytes'] / 1024:.0f} KiB (goal < 10 ms)")


def report_baseline(cells):
    print("\n== Against the baseline binary (c=64, median of rounds)")
    for label, cell in cells.items():
        if label.startswith("current "):
            protocol = label.split(" ", 1)[1]
            old = cells[f"baseline {protocol}"]["median_rps"]
            bare = cells[f"unobserved {protocol}"]["median_rps"]
            print(f"  {protocol:<16} baseline {old:>9.0f} req/s  current {cell['median_rps']:>9.0f} req/s"
                  f"  {cell['median_rps'] / old:.3f}x;  current --no-metrics {bare:>9.0f} req/s  {bare / old:.3f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 3 s cells, 1 round, 10 endpoints")
    parser.add_argument("--seconds", type=float, help="seconds of load per cell (default 10)")
    parser.add_argument("--rounds", type=int, help="rounds of interleaved cells (default 3)")
    parser.add_argument("--endpoints", type=int, help="endpoints added for the scrape (default 100)")
    parser.add_argument("--scrapes", type=int, default=50, help="scrapes timed (default 50)")
    parser.add_argument("--serval", default=str(REPO_DIR / ".build" / "release" / "serval"),
                        help="the serval binary (default .build/release/serval)")
    parser.add_argument("--baseline", help="a serval binary of another commit to compare the core paths with")
    parser.add_argument("--grpc-load", default=str(REPO_DIR / ".build" / "release" / "serval-grpc-load"),
                        help="the gRPC load generator (skipped when missing)")
    parser.add_argument("--baseline-only", action="store_true", help="only the core paths against --baseline")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (logs, data dirs)")
    args = parser.parse_args()
    if not os.access(args.serval, os.X_OK):
        parser.error(f"no serval binary at {args.serval}: swift build -c release --product serval")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    ctx = argparse.Namespace(
        serval=os.path.abspath(args.serval), baseline=args.baseline and os.path.abspath(args.baseline),
        grpc_load=args.grpc_load if os.access(args.grpc_load, os.X_OK) else None, concurrency=64,
        seconds=args.seconds or (3 if args.quick else 10), rounds=args.rounds or (1 if args.quick else 3),
        endpoints=args.endpoints if args.endpoints is not None else (10 if args.quick else 100),
        scrapes=args.scrapes, start_timeout=900.0, tmp=Path(tempfile.mkdtemp(prefix="serval-metrics-bench-")))
    started_at = datetime.datetime.now()
    results = {"failures": {}}
    try:
        log(f"temp dir {ctx.tmp}")
        results["cpu_busy_before"] = cpu_busy(1.0)
        lr = train_models(ctx.tmp / "packages", ["lr"])["lr"]
        if not args.baseline_only:
            results["overhead"] = overhead(ctx, lr)
        if ctx.baseline:
            results["baseline"] = against_baseline(ctx, lr)
    finally:
        finish_run(ctx, args.keep_temp)
    report(results)
    save_results("metrics" + ("-quick" if args.quick else ""), started_at, results, serval=serval_info(ctx.serval),
                 versions=versions(ctx))


if __name__ == "__main__":
    main()
