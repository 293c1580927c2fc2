#!/usr/bin/env python3
"""Serval's asynchronous inference benchmark: throughput, latency and a 500 MB input, against real-time.

1. Throughput: one Serval process serves the LogisticRegression of bench.py (20 features) twice: as a real-time
   endpoint (batching on) and as an async endpoint. The same Python client, at the same concurrency, sends the
   real-time requests (the baseline) and then submits the async invocations inline; the run reports accepted/s
   (202s per second of submission), completed/s (invocations / time from the first submit to the last
   completedAt), errors, and checks that every accepted id ended Completed.
2. Latency under an idle queue: one invocation at a time, polled until Completed; p50/p99 of completedAt -
   createdAt and of the client-observed time, next to real-time c=1.
3. A 500 MB input: a fresh Serval process; the file goes up through the S3 API (boto3 upload_file, multipart),
   is submitted by InputLocation to an endpoint whose code/inference.py answers its SHA-256 and length, and the
   result is checked; Serval's RSS (and, apart, its workers') is sampled from idle to the end.

It prints figures and ratios and never asserts on them. Raw results go to bench/results/async-*.json. Run it
through `bench/run.sh async`, which provides the Python environment and the release build.
"""

import argparse
import datetime
import hashlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import statistics
import tempfile
import threading
import time
import types
from pathlib import Path

from bench import (cpu_busy, epoch, finish_run, http_json, log, lua_script, _on_signal, process_cpu_seconds, REPO_DIR,
                   rss_kb, RSSSampler, run_wrk, save_results, serval_info, serval_process, Server, train_models,
                   tree_cpu_seconds, versions)

TERMINAL = ("Completed", "Failed", "Expired")


# ---------------------------------------------------------------------------------------------
# A small HTTP/1.1 keep-alive client. http.client parses headers with the email package, which costs more CPU per
# request than Serval spends on a small invocation; on 2 shared cores that would measure the client.


class HTTPError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; answers with Content-Length or chunked bodies. Not thread-safe."""

    def __init__(self, host, port, timeout=60.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock, self.buf = None, bytearray()

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, bytearray()

    def _recv(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise HTTPError("the server closed the connection")
        self.buf += chunk

    def _line(self):
        while (end := self.buf.find(b"\r\n")) < 0:
            self._recv()
        line = bytes(self.buf[:end])
        del self.buf[:end + 2]
        return line

    def _exactly(self, n):
        while len(self.buf) < n:
            self._recv()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def request(self, method, path, body=b"", headers=None):
        """Returns (status, headers with lower-case names, body bytes). A failed exchange closes the connection
        and raises; nothing is retried (a POST may have been accepted)."""
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        try:
            self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            while (end := self.buf.find(b"\r\n\r\n")) < 0:
                self._recv()
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            del self.buf[:end + 4]
            status = int(lines[0].split(" ", 2)[1])
            fields = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            if "chunked" in fields.get("transfer-encoding", ""):
                parts = []
                while size := int(self._line().split(b";")[0], 16):
                    parts.append(self._exactly(size))
                    self._exactly(2)
                while self._line():  # trailers
                    pass
                data = b"".join(parts)
            else:
                data = self._exactly(int(fields.get("content-length", "0")))
            if fields.get("connection", "").lower() == "close":
                self.close()
            return status, fields, data
        except Exception:
            self.close()
            raise

    def json(self, method, path, payload=None, expect=(200,)):
        body = b"" if payload is None else json.dumps(payload).encode()
        status, _, data = self.request(method, path, body, {"Content-Type": "application/json"} if body else None)
        if status not in expect:
            raise HTTPError(f"{method} {path} -> HTTP {status}: {data[:300].decode(errors='replace')}")
        return json.loads(data) if data else {}


def percentile(values, pct):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(pct / 100 * len(ordered) + 0.5)) - 1))]


def closed_loop(host, port, count, concurrency, send):
    """Runs `count` requests on `concurrency` threads, one keep-alive connection each, back to back.
    send(conn, i) -> (ok, value, error text). Returns the records (i, t_start, t_end, ok, value, error) in
    time.time() seconds and the wall time."""
    counter, records, lock = itertools.count(), [], threading.Lock()

    def caller():
        conn, mine = Connection(host, port), []
        while (i := next(counter)) < count:
            t0 = time.time()
            try:
                ok, value, error = send(conn, i)
            except Exception as exc:  # noqa: BLE001 - every failure is a counted error
                ok, value, error = False, None, f"{type(exc).__name__}: {exc}"
            mine.append((i, t0, time.time(), ok, value, error))
        conn.close()
        with lock:
            records.extend(mine)

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(concurrency)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return records, time.time() - start


def summarize(records, wall):
    ok = [r for r in records if r[3]]
    errors = [r for r in records if not r[3]]
    lat = [(r[2] - r[1]) * 1e3 for r in ok]
    return {"requests": len(records), "ok": len(ok), "errors": len(errors), "seconds": wall,
            "rps": len(ok) / wall if wall else None,
            "p50_ms": percentile(lat, 50) if lat else None, "p99_ms": percentile(lat, 99) if lat else None,
            "first_error": errors[0][5] if errors else None}


# ---------------------------------------------------------------------------------------------
# Serval


def deploy(ctx, server, base, name, package, batch=1, delay_ms=0.0, async_settings=None):
    """Model, endpoint config and endpoint through the REST API (what `serval deploy` does); waits for InService."""
    http_json("POST", f"{base}/models", {"name": name, "modelDataUrl": str(package)})
    config = {"name": name, "variants": [{"model": name, "instanceCount": 1, "maxBatchSize": batch,
                                          "maxQueueDelayMs": delay_ms}]}
    if async_settings:
        config["asyncInference"] = async_settings
    http_json("POST", f"{base}/endpoint-configs", config)
    http_json("POST", f"{base}/endpoints", {"name": name, "config": name})
    deadline = time.monotonic() + ctx.start_timeout
    while True:
        if server.exited():
            raise RuntimeError(f"serval exited with {server.proc.returncode} while deploying {name}")
        described = http_json("GET", f"{base}/endpoints/{name}")
        if described.get("status") == "InService":
            return described
        if described.get("status") == "Failed":
            raise RuntimeError(f"endpoint {name} Failed: {described.get('failureReason')}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"endpoint {name} not InService within {ctx.start_timeout:.0f} s")
        time.sleep(0.1)


def list_ids(conn, endpoint, status):
    """Every invocation id of an endpoint with a status, through the paginated list, with its description."""
    found, token = {}, None
    while True:
        query = f"status={status}&limit=1000" + (f"&nextToken={token}" if token else "")
        page = conn.json("GET", f"/endpoints/{endpoint}/async-invocations?{query}")
        for item in page["invocations"]:
            found[item["inferenceId"]] = item
        token = page.get("nextToken")
        if not token:
            return found


def wait_terminal(conn, endpoint, inference_id, deadline, interval):
    """Polls one invocation until it ends; returns (description, time.time() when it was seen ended)."""
    while True:
        described = conn.json("GET", f"/endpoints/{endpoint}/async-invocations/{inference_id}")
        if described["status"] in TERMINAL:
            return described, time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"invocation {inference_id} still {described['status']} at the deadline")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# 1 and 2: throughput and latency of small invocations


def throughput_and_latency(ctx, lr):
    results = {}
    body = json.dumps({"instances": [lr["row"]]}).encode()
    expected = [int(v) for v in lr["model"].predict([lr["row"]])]
    json_headers = {"Content-Type": "application/json"}
    with serval_process(ctx, "serval-small") as (server, (host, port), _):
        base = f"http://{host}:{port}"
        batching = {"maxBatchSize": ctx.max_batch_size, "maxQueueDelayMs": ctx.max_delay_ms}
        deploy(ctx, server, base, "lr-rt", lr["package"], ctx.max_batch_size, ctx.max_delay_ms)
        deploy(ctx, server, base, "lr-async", lr["package"], ctx.max_batch_size, ctx.max_delay_ms, {
            "outputPath": "s3://results/lr-async",
            "maxConcurrentInvocationsPerInstance": ctx.async_max_concurrency})
        results["settings"] = {**batching, "asyncMaxConcurrency": ctx.async_max_concurrency,
                               "clientConcurrency": ctx.concurrency, "count": ctx.count}
        conn = Connection(host, port)

        # -- the real-time baseline: the same client and concurrency -----------------------------------------
        def realtime(c, i):
            status, _, data = c.request("POST", "/endpoints/lr-rt/invocations", body, json_headers)
            if status != 200:
                return False, None, f"HTTP {status}: {data[:200].decode(errors='replace')}"
            return True, None, None

        status, _, data = conn.request("POST", "/endpoints/lr-rt/invocations", body, json_headers)
        if status != 200 or json.loads(data).get("predictions") != expected:
            raise RuntimeError(f"real-time check failed: HTTP {status} {data[:200]!r}, expected {expected}")
        closed_loop(host, port, ctx.warmup, ctx.concurrency, realtime)  # warm-up, discarded
        rt = measure_cpu(server, lambda: summarize(*closed_loop(host, port, ctx.count, ctx.concurrency, realtime)))
        results["realtime"] = rt
        log(f"  real-time  c={ctx.concurrency}: {rt['rps']:,.0f} req/s, p50 {rt['p50_ms']:.2f} ms, "
            f"p99 {rt['p99_ms']:.2f} ms, {rt['errors']} errors")
        rt1 = summarize(*closed_loop(host, port, ctx.latency_count, 1, realtime))
        results["realtime_c1"] = rt1
        log(f"  real-time  c=1: {rt1['rps']:,.0f} req/s, p50 {rt1['p50_ms']:.2f} ms, p99 {rt1['p99_ms']:.2f} ms")
        if shutil.which("wrk"):  # the server's real-time ceiling with a cheaper client, for context
            target = types.SimpleNamespace(server="rt", model="lr", body=body, headers=json_headers)
            script = lua_script(ctx, target)
            wrk = run_wrk(f"{base}/endpoints/lr-rt/invocations", script, ctx.concurrency, ctx.wrk_seconds)
            wrk.pop("wrk_output", None)
            results["realtime_wrk"] = wrk
            log(f"  real-time  c={ctx.concurrency} with wrk (context): {wrk['rps'] or 0:,.0f} req/s, "
                f"{wrk['errors']} errors")

        # -- async: warm-up, then the measured submission ----------------------------------------------------
        def submit(c, i):
            status, _, data = c.request("POST", "/endpoints/lr-async/async-invocations", body, json_headers)
            if status != 202:
                return False, None, f"HTTP {status}: {data[:200].decode(errors='replace')}"
            return True, json.loads(data)["InferenceId"], None

        warm, _ = closed_loop(host, port, ctx.warmup, ctx.concurrency, submit)
        drain_deadline = time.monotonic() + ctx.drain_timeout
        for record in warm:
            if record[3]:
                wait_terminal(conn, "lr-async", record[4], drain_deadline, 0.05)

        queue_samples, submitting, stop = [], threading.Event(), threading.Event()
        submitting.set()

        def watch():  # the endpoint's queue, every 50 ms, until the submission is over and the queue empty
            watcher = Connection(host, port)
            while not stop.is_set():
                try:
                    queue = watcher.json("GET", "/endpoints/lr-async").get("asyncQueue") or {}
                    queue_samples.append((time.time(), queue.get("queued"), queue.get("inProgress")))
                    if not submitting.is_set() and queue.get("queued") == 0 and queue.get("inProgress") == 0:
                        return
                except Exception as exc:  # noqa: BLE001
                    queue_samples.append((time.time(), None, f"{type(exc).__name__}: {exc}"))
                stop.wait(0.05)

        def submission():
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            records, wall = closed_loop(host, port, ctx.count, ctx.concurrency, submit)
            submitting.clear()
            watcher.join(ctx.drain_timeout)
            stop.set()
            return records, wall

        cpu_before = cpu_snapshot(server)
        records, submit_wall = submission()
        queue_empty_at = queue_samples[-1][0] if queue_samples else None
        cpu = cpu_delta(server, *cpu_before)
        sub = summarize(records, submit_wall)
        accepted = {r[4]: r for r in records if r[3]}
        first_submit = min(r[1] for r in records)
        last_accept = max((r[2] for r in records if r[3]), default=first_submit)
        accepted_per_s = len(accepted) / (last_accept - first_submit) if accepted else 0.0

        completed = list_ids(conn, "lr-async", "Completed")
        failed = {s: list_ids(conn, "lr-async", s) for s in ("Failed", "Expired")}
        mine_done = [completed[i] for i in accepted if i in completed]
        mine_failed = {s: [i for i in accepted if i in found] for s, found in failed.items()}
        missing = [i for i in accepted if i not in completed and all(i not in f for f in failed.values())]
        last_completed = max((epoch(d["completedAt"]) for d in mine_done), default=None)
        completed_per_s = len(mine_done) / (last_completed - first_submit) if last_completed else 0.0
        samples = [random.Random(0).choice(list(accepted))] if accepted else []
        wrong = []
        for inference_id in samples:  # a result is the real-time answer
            status, _, data = conn.request("GET", f"/endpoints/lr-async/async-invocations/{inference_id}/result")
            if status != 200 or json.loads(data).get("predictions") != expected:
                wrong.append(f"{inference_id}: HTTP {status} {data[:200]!r}")
        depth = [q for _, q, p in queue_samples if isinstance(q, int)]
        results["async_throughput"] = {
            **sub, "accepted": len(accepted), "accepted_per_s": accepted_per_s, "completed": len(mine_done),
            "completed_per_s": completed_per_s,
            "first_submit_to_last_completed_s": (last_completed - first_submit) if last_completed else None,
            "last_accept_to_last_completed_s": (last_completed - last_accept) if last_completed else None,
            "queue_seen_empty_after_s": (queue_empty_at - first_submit) if queue_empty_at else None,
            "max_queued_seen": max(depth, default=None), "failed": len(mine_failed["Failed"]),
            "expired": len(mine_failed["Expired"]), "missing": len(missing), "missing_ids": missing[:10],
            "failure_reasons": sorted({failed["Failed"][i].get("failureReason") or "?"
                                       for i in mine_failed["Failed"]})[:5],
            "wrong_results": wrong,
            "queue_samples": [(round(t - first_submit, 3), q, p) for t, q, p in queue_samples], "submit_p50_ms": sub["p50_ms"], "submit_p99_ms": sub["p99_ms"], **cpu,
            "cpu_per_invocation_note": "server and client CPU from the first submit until the queue was empty"}
        a = results["async_throughput"]
        log(f"  async      c={ctx.concurrency}: accepted {a['accepted_per_s']:,.0f}/s (submit p50 "
            f"{a['submit_p50_ms']:.2f} ms, p99 {a['submit_p99_ms']:.2f} ms), completed {a['completed_per_s']:,.0f}/s; "
            f"{a['errors']} submit errors, {a['failed']} failed, {a['expired']} expired, {a['missing']} missing, "
            f"max queued {a['max_queued_seen']}")

        # -- latency under an idle queue: one at a time ------------------------------------------------------
        latencies = {"server_ms": [], "client_ms": [], "queue_ms": [], "errors": 0, "first_error": None}
        deadline = time.monotonic() + ctx.drain_timeout
        for _ in range(ctx.latency_count):
            t0 = time.time()
            try:
                status, _, data = conn.request("POST", "/endpoints/lr-async/async-invocations", body, json_headers)
                if status != 202:
                    raise HTTPError(f"HTTP {status}: {data[:200].decode(errors='replace')}")
                described, seen = wait_terminal(conn, "lr-async", json.loads(data)["InferenceId"], deadline,
                                                ctx.poll_interval)
                if described["status"] != "Completed":
                    raise HTTPError(f"ended {described['status']}: {described.get('failureReason')}")
            except Exception as exc:  # noqa: BLE001
                latencies["errors"] += 1
                latencies["first_error"] = latencies["first_error"] or f"{type(exc).__name__}: {exc}"
                continue
            created, started_at, done = (epoch(described[k]) for k in ("createdAt", "startedAt", "completedAt"))
            latencies["server_ms"].append((done - created) * 1e3)
            latencies["queue_ms"].append((started_at - created) * 1e3)
            latencies["client_ms"].append((seen - t0) * 1e3)
        lat = {"count": len(latencies["server_ms"]), "errors": latencies["errors"],
               "first_error": latencies["first_error"], "poll_interval_ms": ctx.poll_interval * 1e3}
        for key in ("server_ms", "queue_ms", "client_ms"):
            values = latencies[key]
            lat[key] = {"p50": percentile(values, 50), "p99": percentile(values, 99), "max": max(values),
                        "mean": statistics.fmean(values)} if values else None
        results["async_latency"] = lat
        if lat["count"]:
            log(f"  async latency (idle queue, {lat['count']}): completedAt-createdAt p50 {lat['server_ms']['p50']:.1f} "
                f"ms p99 {lat['server_ms']['p99']:.1f} ms; client p50 {lat['client_ms']['p50']:.1f} ms p99 "
                f"{lat['client_ms']['p99']:.1f} ms; {lat['errors']} errors")
        conn.close()
    return results


def measure_cpu(server, run):
    before = cpu_snapshot(server)
    result = run()
    result.update(cpu_delta(server, *before))
    answered = result.get("ok") or 0
    if answered:
        result["server_us_per_req"] = result["server_cpu_s"] / answered * 1e6
        result["client_us_per_req"] = result["client_cpu_s"] / answered * 1e6
    return result


def cpu_snapshot(server):
    return os.times(), tree_cpu_seconds(server.proc.pid), process_cpu_seconds(server.proc.pid)


def cpu_delta(server, times_before, tree_before, own_before):
    """CPU seconds since cpu_snapshot: Serval with its workers, Serval alone, and this client."""
    after = os.times()
    return {"server_cpu_s": tree_cpu_seconds(server.proc.pid) - tree_before,
            "serval_only_cpu_s": process_cpu_seconds(server.proc.pid) - own_before,
            "client_cpu_s": (after.user + after.system) - (times_before.user + times_before.system)}


# ---------------------------------------------------------------------------------------------
# 3: one large input, with Serval's RSS sampled


INFERENCE_PY = '''\
import hashlib
import json


def model_fn(model_dir):
    return None


def transform_fn(model, input_data, content_type, accept):
    data = input_data.encode() if isinstance(input_data, str) else input_data
    return json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "length": len(data)}), "application/json"
'''


def big_input(ctx):
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    size = ctx.big_mb * 1_000_000
    package = ctx.tmp / "packages" / "digest"
    (package / "code").mkdir(parents=True)
    (package / "code" / "inference.py").write_text(INFERENCE_PY)
    input_path = ctx.tmp / "big-input.bin"
    log(f"writing a {ctx.big_mb} MB random input")
    digest, block = hashlib.sha256(), 8 << 20
    with open(input_path, "wb") as f:
        for offset in range(0, size, block):
            chunk = os.urandom(min(block, size - offset))
            digest.update(chunk)
            f.write(chunk)
    expected = {"sha256": digest.hexdigest(), "length": size}

    result = {"bytes": size, "expected": expected}
    with serval_process(ctx, "serval-big") as (server, (host, port), s3_url):
        base = f"http://{host}:{port}"
        deploy(ctx, server, base, "digest", package, async_settings={"outputPath": "s3://results/digest"})
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="serval",
                          aws_secret_access_key="serval", config=Config(s3={"addressing_style": "path"}))
        conn = Connection(host, port, timeout=ctx.drain_timeout)
        transfer = TransferConfig()  # boto3's defaults: 8 MiB parts above 8 MiB, 10 threads
        result["upload"] = {"multipart_chunksize": transfer.multipart_chunksize,
                            "max_concurrency": transfer.max_concurrency}
        with RSSSampler(server.proc.pid, ctx.rss_interval) as sampler:
            with sampler.phase("idle"):
                time.sleep(ctx.idle_seconds)  # the baseline RSS, sampled over this window
            with sampler.phase("upload"):
                s3.create_bucket(Bucket="inputs")
                s3.upload_file(str(input_path), "inputs", "big-input.bin", Config=transfer)
            with sampler.phase("invocation"):
                t0 = time.time()
                status, _, data = conn.request("POST", "/endpoints/digest/async-invocations", b"", {
                    "X-Amzn-SageMaker-InputLocation": "s3://inputs/big-input.bin",
                    "Content-Type": "application/octet-stream"})
                if status != 202:
                    raise RuntimeError(f"submit -> HTTP {status}: {data[:300]!r}")
                inference_id = json.loads(data)["InferenceId"]
                described, seen = wait_terminal(conn, "digest", inference_id,
                                                time.monotonic() + ctx.drain_timeout, 0.05)
                result["invocation"] = {"status": described["status"], "client_s": seen - t0,
                                        "failure_reason": described.get("failureReason"),
                                        "server_s": epoch(described["completedAt"]) - epoch(described["createdAt"])
                                        if described.get("completedAt") else None}
            with sampler.phase("result"):
                status, _, data = conn.request("GET", f"/endpoints/digest/async-invocations/{inference_id}/result")
                answer = json.loads(data) if status == 200 else {"http_status": status, "body": data[:300].decode()}
                bucket, _, key = described["outputLocation"].removeprefix("s3://").partition("/")
                via_s3 = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            with sampler.phase("download"):  # the input back through the S3 API, streamed
                body, check = s3.get_object(Bucket="inputs", Key="big-input.bin")["Body"], hashlib.sha256()
                for chunk in body.iter_chunks(1 << 20):
                    check.update(chunk)
        conn.close()
        idle = [s[1] for s in sampler.samples if sampler.phases[0][1] <= s[0] <= sampler.phases[0][2]]
        idle_workers = [s[2] for s in sampler.samples if sampler.phases[0][1] <= s[0] <= sampler.phases[0][2]]
        idle_kb = statistics.median(idle) if idle else sampler.samples[0][1]
        peak_kb = max(s[1] for s in sampler.samples)
        hwm_kb = rss_kb(server.proc.pid)[1]
        result.update({
            "answer": answer, "answer_via_s3": via_s3, "digest_ok": answer == expected and via_s3 == expected,
            "download_digest_ok": check.hexdigest() == expected["sha256"],
            "serval_idle_rss_mb": idle_kb / 1024, "serval_peak_rss_mb": peak_kb / 1024,
            "serval_peak_minus_idle_mb": (peak_kb - idle_kb) / 1024, "serval_vm_hwm_mb": hwm_kb / 1024,
            "workers_idle_rss_mb": (statistics.median(idle_workers) if idle_workers else 0) / 1024,
            "workers_peak_rss_mb": max(s[2] for s in sampler.samples) / 1024,
            "samples": len(sampler.samples), "sample_interval_ms": ctx.rss_interval * 1e3,
            "phases": sampler.report(), "goal_mb": 200})
    input_path.unlink()
    return result


# ---------------------------------------------------------------------------------------------
# Report


def ratio(value, base):
    return f"{value / base:.2f}x" if value and base else "n/a"


def print_report(results):
    print()
    tp, rt, rt1 = results.get("async_throughput"), results.get("realtime"), results.get("realtime_c1")
    if tp and rt:
        s = results["settings"]
        print(f"Async throughput: {s['count']:,} inline invocations, LogisticRegression (20 features), client "
              f"concurrency {s['clientConcurrency']}, asyncMaxConcurrency {s['asyncMaxConcurrency']}, batching "
              f"{s['maxBatchSize']}/{s['maxQueueDelayMs']} ms")
        print(f"  {'':28} {'per s':>9} {'vs real-time':>13} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
              f"{'srv us/req':>14} {'client us/req':>14}")
        srv = lambda r, n: (f"{r['server_cpu_s'] / n * 1e6:.0f} ({r['serval_only_cpu_s'] / n * 1e6:.0f})"  # noqa: E731
                            if n else "-")
        cli = lambda r, n: f"{r['client_cpu_s'] / n * 1e6:.0f}" if n else "-"  # noqa: E731
        print(f"  {'real-time (same client)':28} {rt['rps']:>9,.0f} {'1.00x':>13} {rt['p50_ms']:>8.2f} "
              f"{rt['p99_ms']:>8.2f} {rt['errors']:>7} {srv(rt, rt['ok']):>14} {cli(rt, rt['ok']):>14}")
        print(f"  {'async accepted':28} {tp['accepted_per_s']:>9,.0f} {ratio(tp['accepted_per_s'], rt['rps']):>13} "
              f"{tp['submit_p50_ms']:>8.2f} {tp['submit_p99_ms']:>8.2f} {tp['errors']:>7}")
        print(f"  {'async completed':28} {tp['completed_per_s']:>9,.0f} {ratio(tp['completed_per_s'], rt['rps']):>13} "
              f"{'':>8} {'':>8} {tp['failed'] + tp['expired'] + tp['missing']:>7} "
              f"{srv(tp, tp['completed']):>14} {cli(tp, tp['completed']):>14}")
        if wrk := results.get("realtime_wrk"):
            print(f"  {'real-time with wrk (context)':28} {wrk['rps'] or 0:>9,.0f} {ratio(wrk['rps'], rt['rps']):>13} "
                  f"{wrk['p50_ms'] or 0:>8.2f} {wrk['p99_ms'] or 0:>8.2f} {wrk['errors']:>7}")
        print("  srv us/req: CPU of Serval and its workers per request (in brackets: Serval's own)")
        print(f"  first submit -> last completedAt {tp['first_submit_to_last_completed_s']:.2f} s; last 202 -> last "
              f"completedAt {tp['last_accept_to_last_completed_s']:.2f} s; most queued seen {tp['max_queued_seen']}")
        print(f"  {tp['accepted']:,} accepted, {tp['completed']:,} Completed, {tp['failed']} Failed, {tp['expired']} "
              f"Expired, {tp['missing']} in no end state, {len(tp['wrong_results'])} wrong results checked")
        if tp["first_error"]:
            print(f"  first submit error: {tp['first_error']}")
    lat = results.get("async_latency")
    if lat and lat["count"] and rt1:
        print(f"\nAsync latency under an idle queue ({lat['count']} invocations one at a time, status polled every "
              f"{lat['poll_interval_ms']:.0f} ms), against real-time c=1:")
        print(f"  {'':34} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs real-time':>17}")
        for label, key in (("completedAt - createdAt", "server_ms"), ("startedAt - createdAt (queue)", "queue_ms"),
                           ("client: submit -> Completed seen", "client_ms")):
            print(f"  {label:34} {lat[key]['p50']:>8.2f} {lat[key]['p99']:>8.2f} "
                  f"{lat[key]['p50'] / rt1['p50_ms']:>16.1f}x")
        print(f"  {'real-time c=1':34} {rt1['p50_ms']:>8.2f} {rt1['p99_ms']:>8.2f}")
        if lat["errors"]:
            print(f"  {lat['errors']} errors; first: {lat['first_error']}")
    big = results.get("big_input")
    if big:
        inv = big.get("invocation", {})
        print(f"\nOne {big['bytes'] / 1e6:.0f} MB input (upload: boto3 upload_file, "
              f"{big['upload']['multipart_chunksize'] >> 20} MiB parts, {big['upload']['max_concurrency']} threads):")
        print(f"  digest {'OK' if big['digest_ok'] else 'WRONG: ' + json.dumps(big['answer'])[:200]}; streamed download "
              f"{'OK' if big['download_digest_ok'] else 'WRONG'}; invocation {inv.get('status')} in "
              f"{inv.get('server_s') or 0:.1f} s (client {inv.get('client_s', 0):.1f} s)")
        print(f"  Serval RSS: idle {big['serval_idle_rss_mb']:.0f} MB, peak {big['serval_peak_rss_mb']:.0f} MB, "
              f"peak - idle {big['serval_peak_minus_idle_mb']:.0f} MB (goal < {big['goal_mb']} MB: "
              f"{'met' if big['serval_peak_minus_idle_mb'] < big['goal_mb'] else 'MISSED'}); VmHWM "
              f"{big['serval_vm_hwm_mb']:.0f} MB")
        print(f"  workers (not Serval's): idle {big['workers_idle_rss_mb']:.0f} MB, peak {big['workers_peak_rss_mb']:.0f} MB")
        print(f"  {'phase':12} {'seconds':>8} {'Serval peak MB':>15} {'workers peak MB':>16}")
        for name, phase in big["phases"].items():
            peaks = (f"{phase['serval_peak_mb']:>15.0f} {phase['workers_peak_mb']:>16.0f}" if phase["samples"]
                     else f"{'(no sample)':>15} {'':>16}")
            print(f"  {name:12} {phase['seconds']:>8.2f} {peaks}")
    for name, error in results.get("failures", {}).items():
        print(f"\n!! {name} failed: {error}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 1,000 invocations, 50 one at a time, 50 MB")
    parser.add_argument("--count", type=int, help="async invocations (and real-time requests) to send (default 10000)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="client threads, each with its own connection (default 32)")
    parser.add_argument("--async-max-concurrency", type=int, default=32,
                        help="the async endpoint's maxConcurrentInvocationsPerInstance (default 32)")
    parser.add_argument("--max-batch-size", type=int, default=32, help="both endpoints' maxBatchSize (default 32)")
    parser.add_argument("--max-delay-ms", type=float, default=2.0,
                        help="both endpoints' maxQueueDelayMs (default 2)")
    parser.add_argument("--latency-count", type=int, help="invocations one at a time (default 300)")
    parser.add_argument("--poll-ms", type=float, default=1.0, help="status polling interval of the latency test (default 1)")
    parser.add_argument("--big-mb", type=int, help="size of the large input in MB (default 500; 0 skips it)")
    parser.add_argument("--skip-small", action="store_true", help="only the large input")
    parser.add_argument("--serval", default=str(REPO_DIR / ".build" / "release" / "serval"),
                        help="the serval binary (default .build/release/serval)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (logs, data dirs)")
    args = parser.parse_args()
    if not os.access(args.serval, os.X_OK):
        parser.error(f"no serval binary at {args.serval}: swift build -c release --product serval")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)

    ctx = argparse.Namespace(
        serval=os.path.abspath(args.serval), quick=args.quick, concurrency=args.concurrency,
        count=args.count or (1000 if args.quick else 10000), latency_count=args.latency_count or (50 if args.quick else 300),
        big_mb=args.big_mb if args.big_mb is not None else (50 if args.quick else 500),
        async_max_concurrency=args.async_max_concurrency, max_batch_size=args.max_batch_size,
        max_delay_ms=args.max_delay_ms, poll_interval=args.poll_ms / 1e3, warmup=500 if args.quick else 2000,
        wrk_seconds=3 if args.quick else 5, drain_timeout=600.0, start_timeout=300.0, rss_interval=0.025,
        idle_seconds=1.0, tmp=Path(tempfile.mkdtemp(prefix="serval-async-bench-")))
    started_at = datetime.datetime.now()
    results = {"failures": {}}
    try:
        log(f"temp dir {ctx.tmp}")
        results["cpu_busy_before"] = cpu_busy(1.0)
        if results["cpu_busy_before"] > 0.2:
            log(f"note: the machine was {results['cpu_busy_before']:.0%} busy before the run; figures will suffer")
        if not args.skip_small:
            log("training the LogisticRegression (bench.py's models, fixed seeds)")
            lr = train_models(ctx.tmp / "packages", ["lr"])["lr"]
            try:
                results.update(throughput_and_latency(ctx, lr))
            except Exception as error:  # noqa: BLE001 - the large-input figures are still worth having
                results["failures"]["small"] = f"{type(error).__name__}: {error}"
                log(f"  !! small invocations failed: {error}")
                if Server.last_started is not None:
                    log(Server.last_started.log_tail())
        if ctx.big_mb:
            try:
                results["big_input"] = big_input(ctx)
            except Exception as error:  # noqa: BLE001
                results["failures"]["big_input"] = f"{type(error).__name__}: {error}"
                log(f"  !! large input failed: {error}")
                if Server.last_started is not None:
                    log(Server.last_started.log_tail())
    finally:
        finish_run(ctx, args.keep_temp)

    print_report(results)
    save_results("async-quick" if ctx.quick else "async", started_at, results, quick=ctx.quick, versions=versions(ctx),
                 serval_binary=serval_info(ctx.serval))


if __name__ == "__main__":
    main()
