#!/usr/bin/env python3
"""Serval's batch transform benchmark: 1,000,000 CSV rows through a transform job, against a plain Python loop.

The data: 1,000,000 rows × 20 features (make_classification, fixed seeds, Python's shortest round-trip repr, as
pandas writes them) in 10 CSV files, dropped into the object store's folder of a fresh Serval data dir
(<data-dir>/objects/bench/input/part-NN.csv, which the store serves as s3://bench/input/part-NN.csv). The model:
bench.py's LogisticRegression (20 features), trained at bench time.

1. The ceiling: one Python process reads each file, cuts it at line boundaries into payloads of at most
   MaxPayloadInMB (6 MB: 6 × 1,048,576 bytes), decodes each, calls predict and writes the predictions (CSV, one line
   per row) to an output file. Twice: decoding with serval_worker's decode_input (what the worker runs), and with
   np.loadtxt.
2. Transform jobs (POST /transform-jobs, SageMaker's CreateTransformJob shape): MultiRecord, 6 MB payloads,
   SplitType Line, ContentType text/csv, Accept text/csv, AssembleWith Line, with 1 and then 2 instances, on one
   Serval process (release build, --port 0 --s3-port 0); each job is polled until it ends. Rows/s is RecordsTotal /
   (TransformEndTime - TransformStartTime), and also over the wall time from the create request to the poll that
   sees Completed, and once records flow (from the first poll that sees records done). Serval's RSS and, apart, its
   workers' (summed) are sampled from /proc every 25 ms; their CPU is read at every poll.
3. Every output object is checked: as many lines as its input has rows, and every line equal to the ceiling's.

It prints figures and ratios against the ceiling measured in the same run (the goal: a 1-instance job at >= 0.70x the
decode_input ceiling) and never asserts on them. Raw results go to bench/results/transform-*.json. Run it through
`bench/run.sh transform [--quick]`, which provides the Python environment and the release build.
"""

import argparse
import contextlib
import datetime
import io
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import (cpu_busy, _descendants, epoch, finish_run, http_json, log, _on_signal, process_cpu_seconds,
                   REPO_DIR, rss_kb, RSSSampler, save_results, serval_info, serval_process, Server, train_models,
                   versions)

N_FEATURES = 20
BYTES_PER_MB = 1_048_576  # SageMaker's MB, as MaxPayloadInMB counts it
BUCKET, INPUT_PREFIX = "bench", "input/"
TERMINAL = ("Completed", "Failed", "Stopped")


# ---------------------------------------------------------------------------------------------
# Data


def feature_rows(count, seed):
    """`count` rows of 20 features like the ones the model was trained on."""
    from sklearn.datasets import make_classification

    return make_classification(n_samples=count, n_features=N_FEATURES, n_informative=10, random_state=seed)[0]


def csv_bytes(X, fmt="repr"):
    """The rows of X as CSV lines, each number written with Python's shortest round-trip repr (up to 17 significant
    digits, what pandas writes) or a %-format such as "%.6g"."""
    if fmt == "repr":
        return "".join(",".join(map(repr, row)) + "\n" for row in X.tolist()).encode()
    return "".join(",".join(fmt % v for v in row) + "\n" for row in X.tolist()).encode()


def line_chunks(data, max_bytes):
    """Cuts bytes into runs of whole lines of at most max_bytes each (a longer line goes alone), as MultiRecord
    fills its payloads."""
    start, size = 0, len(data)
    while start < size:
        end = start + max_bytes
        if end >= size:
            yield data[start:]
            return
        cut = data.rfind(b"\n", start, end)
        if cut < 0:  # one line longer than a payload
            cut = data.find(b"\n", end)
            cut = size - 1 if cut < 0 else cut
        yield data[start:cut + 1]
        start = cut + 1


def write_inputs(folder, rows, files):
    """Writes `rows` rows in `files` CSV files part-NN.csv; returns [(path, rows)]."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(files):
        count = rows // files + (1 if i < rows % files else 0)
        path = folder / f"part-{i:02d}.csv"
        path.write_bytes(csv_bytes(feature_rows(count, seed=100 + i)))
        written.append((path, count))
    return written


# ---------------------------------------------------------------------------------------------
# 1: the ceiling


def worker_decoder():
    """serval_worker's decode_input and encode_output, from this checkout's python/ folder."""
    sys.path.insert(0, str(REPO_DIR / "python"))
    from serval_worker.codecs import decode_input, encode_output

    return (lambda body: decode_input(body, "text/csv", N_FEATURES)), encode_output


def loadtxt_decoder(body):
    import numpy as np

    return np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.float64, ndmin=2)


def ceiling(model, inputs, out_dir, payload_bytes, decode, encode_output):
    """Reads each input, cuts it into payloads, decodes, predicts and writes CSV predictions to
    out_dir/<name>.out; returns the figures."""
    out_dir.mkdir(parents=True)
    rows, payloads = 0, 0
    cpu0, t0 = os.times(), time.perf_counter()
    for path, _ in inputs:
        with open(out_dir / (path.name + ".out"), "wb") as out:
            for payload in line_chunks(path.read_bytes(), payload_bytes):
                X = decode(payload)
                out.write(encode_output(model.predict(X), "text/csv")[1])
                rows += len(X)
                payloads += 1
    seconds, cpu1 = time.perf_counter() - t0, os.times()
    return {"rows": rows, "payloads": payloads, "seconds": seconds, "rows_per_s": rows / seconds,
            "cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)}


# ---------------------------------------------------------------------------------------------
# 2: transform jobs


def seconds_of(value):
    """A DescribeTransformJob time (ISO-8601, or epoch seconds) in epoch seconds."""
    return float(value) if isinstance(value, (int, float)) else epoch(value)


def job_request(ctx, name, instances, output):
    return {
        "TransformJobName": name, "ModelName": "lr", "MaxConcurrentTransforms": ctx.max_concurrent,
        "MaxPayloadInMB": ctx.payload_mb, "BatchStrategy": "MultiRecord",
        "ModelClientConfig": {"InvocationsTimeoutInSeconds": 600, "InvocationsMaxRetries": 0},
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{INPUT_PREFIX}"}},
            "ContentType": "text/csv", "SplitType": "Line", "CompressionType": "None"},
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/{output}", "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": instances}}


class JobCPU:
    """CPU seconds of Serval and, apart, of the workers it starts during a job. A job's workers exit when it ends,
    taking their counters with them, so each one's is read at every poll and the last reading kept."""

    def __init__(self, pid):
        self.pid, self.serval_start, self.workers = pid, process_cpu_seconds(pid), {}

    def sample(self):
        for child in _descendants(self.pid):
            with contextlib.suppress(OSError, IndexError, ValueError):
                self.workers[child] = process_cpu_seconds(child)
        return process_cpu_seconds(self.pid) - self.serval_start, sum(self.workers.values())


def run_job(ctx, server, base, instances):
    """Creates one transform job and polls it until it ends, sampling RSS and CPU; returns its figures."""
    name, output = f"bench-{instances_label(instances).replace(' ', '-')}", f"out-{instances}"
    progress = []
    with RSSSampler(server.proc.pid, ctx.rss_interval) as sampler:
        with sampler.phase("idle"):
            time.sleep(ctx.idle_seconds)
        with sampler.phase(f"job, {instances_label(instances)}"):
            cpu = JobCPU(server.proc.pid)
            t0 = time.time()
            http_json("POST", f"{base}/transform-jobs", job_request(ctx, name, instances, output), expect=(200, 201))
            deadline = time.monotonic() + ctx.job_timeout
            while True:
                described = http_json("GET", f"{base}/transform-jobs/{name}")
                seen = time.time()
                serval_cpu, workers_cpu = cpu.sample()
                progress.append((round(seen - t0, 3), described.get("Progress")))
                if described["TransformJobStatus"] in TERMINAL:
                    break
                if server.exited():
                    raise RuntimeError(f"serval exited with {server.proc.returncode} during {name}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} still {described['TransformJobStatus']} after {ctx.job_timeout:.0f} s")
                time.sleep(ctx.poll_interval)
    idle = [s for s in sampler.samples if sampler.phases[0][1] <= s[0] <= sampler.phases[0][2]]
    job = [s for s in sampler.samples if sampler.phases[1][1] <= s[0] <= sampler.phases[1][2]]
    p = described.get("Progress") or {}
    started, ended = described.get("TransformStartTime"), described.get("TransformEndTime")
    server_s = seconds_of(ended) - seconds_of(started) if started and ended else None
    records = p.get("RecordsTotal")
    # The rate once records flow: from the first poll that saw records done (the workers had started and answered
    # their first payloads) to the poll that saw the job end.
    first = next(((t, q["RecordsDone"]) for t, q in progress if q and q.get("RecordsDone")), None)
    last = progress[-1][0], p.get("RecordsDone", 0)
    flowing = (last[1] - first[1]) / (last[0] - first[0]) if first and last[0] > first[0] else None
    return {
        "name": name, "instances": instances, "output": output, "status": described["TransformJobStatus"],
        "failure_reason": described.get("FailureReason"), "progress": p, "description": described,
        "server_s": server_s, "wall_s": seen - t0,
        "rows_per_s": records / server_s if records and server_s else None,
        "wall_rows_per_s": records / (seen - t0) if records else None,
        "first_records_s": first[0] if first else None, "flowing_rows_per_s": flowing,
        "create_to_start_s": seconds_of(started) - t0 if started else None,
        "serval_cpu_s": serval_cpu, "workers_cpu_s": workers_cpu,
        "serval_idle_rss_mb": statistics.median(s[1] for s in idle) / 1024 if idle else None,
        "serval_peak_rss_mb": max((s[1] for s in job), default=0) / 1024,
        "workers_peak_rss_mb": max((s[2] for s in job), default=0) / 1024,
        "serval_vm_hwm_mb": rss_kb(server.proc.pid)[1] / 1024, "rss_samples": len(job),
        "progress_samples": progress}


# ---------------------------------------------------------------------------------------------
# 3: outputs


def check_outputs(objects, output, inputs, ceiling_dir, sample_every=1):
    """Each input's .out object: as many lines as rows, each line equal to the ceiling's."""
    problems, lines_checked = [], 0
    for path, rows in inputs:
        out = objects / BUCKET / output / (path.name + ".out")
        if not out.is_file():
            found = sorted(str(p.relative_to(objects / BUCKET)) for p in (objects / BUCKET / output).rglob("*")
                           if p.is_file())[:5] if (objects / BUCKET / output).is_dir() else []
            problems.append(f"no {out.relative_to(objects)} (found {found})")
            continue
        got = out.read_bytes().splitlines()
        want = (ceiling_dir / (path.name + ".out")).read_bytes().splitlines()
        if len(got) != rows:
            problems.append(f"{out.name}: {len(got):,} lines for {rows:,} rows")
        sample = range(0, min(len(got), len(want)), sample_every)
        wrong = [i for i in sample if got[i] != want[i]]
        lines_checked += len(sample)
        if wrong:
            i = wrong[0]
            problems.append(f"{out.name}: {len(wrong):,} lines differ from the ceiling's; line {i + 1}: "
                            f"{got[i][:60]!r} != {want[i][:60]!r}")
    return {"ok": not problems, "problems": problems, "lines_checked": lines_checked}


# ---------------------------------------------------------------------------------------------
# Report


def ratio(value, base):
    return f"{value / base:.2f}x" if value and base else "n/a"


def instances_label(n):
    return f"{n} instance{'s' if n > 1 else ''}"


def print_report(ctx, results):
    print()
    data = results.get("data")
    if not data:
        return
    print(f"Batch transform: {data['rows']:,} rows × {N_FEATURES} features in {data['files']} CSV files "
          f"({data['bytes'] / 1e6:.0f} MB), LogisticRegression; MultiRecord, {ctx.payload_mb} MB payloads, "
          f"SplitType Line, text/csv in and out, AssembleWith Line, MaxConcurrentTransforms {ctx.max_concurrent}")
    ceilings = results.get("ceiling", {})
    base = ceilings.get("decode_input", {}).get("rows_per_s")
    loadtxt = ceilings.get("np.loadtxt", {}).get("rows_per_s")
    print(f"  {'':36} {'rows/s':>10} {'vs ceiling':>11} {'vs loadtxt':>11} {'seconds':>8} {'Serval peak MB':>15} "
          f"{'workers peak MB':>16}")
    for label, c in ceilings.items():
        print(f"  {'ceiling: ' + label + ' loop':36} {c['rows_per_s']:>10,.0f} {ratio(c['rows_per_s'], base):>11} "
              f"{ratio(c['rows_per_s'], loadtxt):>11} {c['seconds']:>8.2f}")
    for job in results.get("jobs", []):
        label = f"job, {instances_label(job['instances'])}:"
        if job["status"] != "Completed":
            print(f"  {label:36} {job['status']}: {job.get('failure_reason')}")
            continue
        peaks = f"{job['serval_peak_rss_mb']:>15.0f} {job['workers_peak_rss_mb']:>16.0f}"
        print(f"  {label + ' start→end':36} {job['rows_per_s'] or 0:>10,.0f} "
              f"{ratio(job['rows_per_s'], base):>11} {ratio(job['rows_per_s'], loadtxt):>11} "
              f"{job['server_s'] or 0:>8.2f} {peaks}")
        print(f"  {label + ' create→Completed':36} {job['wall_rows_per_s'] or 0:>10,.0f} "
              f"{ratio(job['wall_rows_per_s'], base):>11} {ratio(job['wall_rows_per_s'], loadtxt):>11} "
              f"{job['wall_s']:>8.2f}")
        if job["flowing_rows_per_s"]:
            print(f"  {label + ' once records flow':36} {job['flowing_rows_per_s']:>10,.0f} "
                  f"{ratio(job['flowing_rows_per_s'], base):>11} {ratio(job['flowing_rows_per_s'], loadtxt):>11} "
                  f"{job['wall_s'] - job['first_records_s']:>8.2f}")
    print("  ceiling: one Python process, the same payloads, decode + predict + CSV encode + write (vs ceiling: "
          "against the decode_input loop)")
    print("  start→end: RecordsTotal / (TransformEndTime - TransformStartTime); create→Completed: over the wall time "
          "from the create request to the poll that saw Completed; once records flow: from the first poll that saw "
          "records done (the job's workers started, their first payloads answered) to the poll that saw Completed")
    for job in results.get("jobs", []):
        if job["status"] == "Completed":
            rows, check = job["progress"].get("RecordsTotal") or 1, job.get("check", {})
            ceiling_us = ceilings.get("decode_input", {}).get("cpu_s", 0) / data["rows"] * 1e6
            print(f"  {instances_label(job['instances'])}: first records done {job['first_records_s'] or 0:.2f} s after "
                  f"the create request (TransformStartTime {job['create_to_start_s'] or 0:.2f} s after it); CPU per row: "
                  f"Serval {job['serval_cpu_s'] / rows * 1e6:.1f} µs, workers {job['workers_cpu_s'] / rows * 1e6:.1f} µs "
                  f"(ceiling {ceiling_us:.1f} µs); Serval RSS idle {job['serval_idle_rss_mb'] or 0:.0f} MB, peak "
                  f"{job['serval_peak_rss_mb']:.0f} MB (VmHWM {job['serval_vm_hwm_mb']:.0f} MB); outputs "
                  f"{'OK' if check.get('ok') else 'WRONG'} ({check.get('lines_checked', 0):,} lines compared with the "
                  f"ceiling's)")
            for problem in job.get("check", {}).get("problems", [])[:5]:
                print(f"    !! {problem}")
    one = next((j for j in results.get("jobs", []) if j["instances"] == 1 and j["status"] == "Completed"), None)
    if one and base:
        r = one["rows_per_s"] / base
        print(f"  goal: 1 instance >= 0.70x the ceiling (start→end): {r:.2f}x, {'met' if r >= 0.70 else 'MISSED'}"
              + (f"; once records flow {one['flowing_rows_per_s'] / base:.2f}x" if one["flowing_rows_per_s"] else ""))
    for name, error in results.get("failures", {}).items():
        print(f"\n!! {name} failed: {error}")


# ---------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 100,000 rows")
    parser.add_argument("--rows", type=int, help="rows in all (default 1,000,000; --quick 100,000)")
    parser.add_argument("--files", type=int, default=10, help="input files (default 10)")
    parser.add_argument("--payload-mb", type=int, default=6, help="MaxPayloadInMB (default 6)")
    parser.add_argument("--max-concurrent", type=int, default=2,
                        help="MaxConcurrentTransforms, payloads in flight per instance (default 2)")
    parser.add_argument("--instances", default="1,2", help="instance counts, one job each (default 1,2)")
    parser.add_argument("--skip-jobs", action="store_true", help="only the data and the ceiling (no Serval)")
    parser.add_argument("--serval", default=str(REPO_DIR / ".build" / "release" / "serval"),
                        help="the serval binary (default .build/release/serval)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (data, outputs, logs)")
    args = parser.parse_args()
    if not args.skip_jobs and not os.access(args.serval, os.X_OK):
        parser.error(f"no serval binary at {args.serval}: swift build -c release --product serval")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)

    ctx = argparse.Namespace(
        serval=os.path.abspath(args.serval), quick=args.quick, rows=args.rows or (100_000 if args.quick else 1_000_000),
        files=args.files, payload_mb=args.payload_mb, payload_bytes=args.payload_mb * BYTES_PER_MB,
        max_concurrent=args.max_concurrent, instances=[int(n) for n in args.instances.split(",") if n],
        start_timeout=300.0, job_timeout=1800.0, poll_interval=0.1, rss_interval=0.025, idle_seconds=0.5,
        tmp=Path(tempfile.mkdtemp(prefix="serval-transform-bench-")))
    started_at = datetime.datetime.now()
    results = {"failures": {}, "settings": {k: v for k, v in vars(ctx).items() if k not in ("tmp", "serval")}}
    data_dir = ctx.tmp / "serval-data"
    objects = data_dir / "objects"
    try:
        log(f"temp dir {ctx.tmp}")
        results["cpu_busy_before"] = cpu_busy(1.0)
        if results["cpu_busy_before"] > 0.2:
            log(f"note: the machine was {results['cpu_busy_before']:.0%} busy before the run; figures will suffer")
        log("training the LogisticRegression (bench.py's, fixed seed)")
        lr = train_models(ctx.tmp / "packages", ["lr"])["lr"]
        log(f"writing {ctx.rows:,} rows in {ctx.files} files under {objects / BUCKET / INPUT_PREFIX}")
        inputs = write_inputs(objects / BUCKET / INPUT_PREFIX, ctx.rows, ctx.files)
        results["data"] = {"rows": ctx.rows, "files": ctx.files, "bytes": sum(p.stat().st_size for p, _ in inputs)}

        decode_input, encode_output = worker_decoder()
        results["ceiling"] = {}
        for label, decode in (("decode_input", decode_input), ("np.loadtxt", loadtxt_decoder)):
            log(f"ceiling: {label}")
            c = ceiling(lr["model"], inputs, ctx.tmp / f"ceiling-{label}", ctx.payload_bytes, decode, encode_output)
            results["ceiling"][label] = c
            log(f"  {c['rows']:,} rows in {c['payloads']} payloads, {c['seconds']:.2f} s: {c['rows_per_s']:,.0f} rows/s")
        ceiling_dir = ctx.tmp / "ceiling-decode_input"
        if not args.skip_jobs:
            results["jobs"] = []
            try:
                with serval_process(ctx, "serval-transform", data_dir) as (server, (host, port), _):
                    base = f"http://{host}:{port}"
                    http_json("POST", f"{base}/models", {"name": "lr", "modelDataUrl": str(lr["package"])})
                    for n in ctx.instances:
                        log(f"transform job, {instances_label(n)}")
                        job = run_job(ctx, server, base, n)
                        results["jobs"].append(job)
                        log(f"  {job['status']} in {job['wall_s']:.2f} s (start→end {job['server_s'] or 0:.2f} s): "
                            f"{job['rows_per_s'] or 0:,.0f} rows/s; Serval peak RSS {job['serval_peak_rss_mb']:.0f} MB, "
                            f"workers {job['workers_peak_rss_mb']:.0f} MB")
                        if job["status"] == "Completed":
                            job["check"] = check_outputs(objects, job["output"], inputs, ceiling_dir)
                            log(f"  outputs {'OK' if job['check']['ok'] else 'WRONG: ' + '; '.join(job['check']['problems'][:3])}")
                        else:
                            results["failures"][job["name"]] = f"{job['status']}: {job['failure_reason']}"
            except Exception as error:  # noqa: BLE001 - the ceiling's figures are still worth printing
                results["failures"]["jobs"] = f"{type(error).__name__}: {error}"
                log(f"  !! transform jobs failed: {error}")
                if Server.last_started is not None:
                    log(Server.last_started.log_tail())
    finally:
        finish_run(ctx, args.keep_temp)

    print_report(ctx, results)
    save_results("transform-quick" if ctx.quick else "transform", started_at, results, quick=ctx.quick,
                 versions=versions(ctx), serval_binary=None if args.skip_jobs else serval_info(ctx.serval))


if __name__ == "__main__":
    main()
