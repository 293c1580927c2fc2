#!/usr/bin/env python3
"""Serval's serving benchmark: Serval (batching off and on) against MLServer and FastAPI + uvicorn.

Trains a LogisticRegression (20 features) and an MLPClassifier (512x512 hidden, 64 features) on
synthetic data with a fixed seed, saves them as joblib packages, measures their in-process predict
throughput at batch 1 and 32, then starts each server in turn and loads it with wrk (one row per
request) at concurrency 1, 16 and 64. It prints req/s, p50, p99 and errors, and the ratios against
the baselines measured in the same run; it never asserts on a figure. Raw results go to
bench/results/. Run it through bench/run.sh, which provides the Python environment and wrk.
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent  # mlserver and uvicorn live beside the interpreter

CONCURRENCIES = (1, 16, 64)
MAX_BATCH, MAX_DELAY_MS = 32, 2
SERVERS = ("serval-off", "serval-on", "mlserver", "fastapi")
SERVER_LABELS = {
    "serval-off": ("Serval", "off"),
    "serval-on": ("Serval", f"{MAX_BATCH}/{MAX_DELAY_MS}ms"),
    "mlserver": ("MLServer", f"adaptive {MAX_BATCH}/{MAX_DELAY_MS}ms"),
    "fastapi": ("FastAPI", "none, 2 workers"),
}
MODELS = {
    "lr": {"features": 20, "title": "LogisticRegression, 20 features"},
    "mlp": {"features": 64, "title": "MLPClassifier 512x512 hidden, 64 features"},
}


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes: every server starts in its own session; stop() ends its whole tree.


def _children_map():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _descendants(pid):
    children, found, stack = _children_map(), [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


class Server:
    """A server process started by the benchmark, with its log file."""

    running = []
    last_started = None

    def __init__(self, name, argv, log_path, env=None, cwd=None, resignal=False):
        # resignal: uvicorn-based servers (MLServer, FastAPI) can wait for ever for background tasks after
        # SIGTERM ("Waiting for background tasks to complete. (CTRL+C to force quit)"); a second signal
        # makes them quit.
        self.name, self.log_path, self.resignal = name, Path(log_path), resignal
        self._log = open(self.log_path, "wb")
        log(f"  starting {name}: {' '.join(map(str, argv))}")
        self.proc = subprocess.Popen(
            [str(a) for a in argv], stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True)
        Server.running.append(self)
        Server.last_started = self

    def exited(self):
        return self.proc.poll() is not None

    def log_tail(self, lines=30):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    | " + line for line in text[-lines:])

    def _signal_tree(self, tree, sig):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
        for child in tree:  # also children that left the server's process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, sig)

    def _wait_tree(self, tree, seconds):
        deadline = time.monotonic() + seconds
        while self.proc.poll() is None or any(_alive(c) for c in tree):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, grace=15.0):
        if self not in Server.running:
            return
        tree = _descendants(self.proc.pid)
        self._signal_tree(tree, signal.SIGTERM)
        stopped = self._wait_tree(tree, 5.0 if self.resignal else grace)
        if not stopped and self.resignal:
            self._signal_tree(tree, signal.SIGTERM)
            stopped = self._wait_tree(tree, 5.0)
        if not stopped:
            log(f"  {self.name} did not stop after SIGTERM; killing it")
            self._signal_tree(tree, signal.SIGKILL)
            self._wait_tree(tree, 5.0)
        self._log.close()
        Server.running.remove(self)

    @classmethod
    def stop_all(cls):
        for server in list(reversed(cls.running)):
            server.stop()


@contextlib.contextmanager
def started(server):
    try:
        yield server
    finally:
        server.stop()


def cpu_busy(seconds):
    """Fraction of the machine's CPU time that was busy over the next `seconds` (from /proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)
    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# HTTP


def http(method, url, body=None, content_type="application/json", timeout=30.0):
    """Returns (status, body bytes); raises only when no HTTP answer came."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_json(method, url, payload=None, expect=(200, 201, 202)):
    status, body = http(method, url, None if payload is None else json.dumps(payload))
    if status not in expect:
        raise RuntimeError(f"{method} {url} -> HTTP {status}: {body[:500].decode(errors='replace')}")
    return json.loads(body) if body else {}


def wait_until_ok(url, server, timeout):
    """Polls url until it answers 200; fails early if the server exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if server.exited():
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode} before {url} answered 200")
        try:
            status, body = http("GET", url, timeout=2)
            if status == 200:
                return
            last = f"HTTP {status}: {body[:200].decode(errors='replace')}"
        except (urllib.error.URLError, OSError) as error:
            last = str(error)
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s (last: {last})")


# ---------------------------------------------------------------------------------------------
# Models and in-process throughput


def train_models(package_root):
    import warnings

    import joblib
    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    trained = {}
    X, y = make_classification(n_samples=5000, n_features=20, n_informative=10, random_state=0)
    trained["lr"] = (LogisticRegression(max_iter=1000).fit(X, y), X)
    X, y = make_classification(n_samples=2000, n_features=64, n_informative=32, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # predict cost does not depend on convergence
        mlp = MLPClassifier(hidden_layer_sizes=(512, 512), max_iter=5, random_state=0).fit(X, y)
    trained["mlp"] = (mlp, X)

    models = {}
    for name, (model, X) in trained.items():
        package = package_root / name
        package.mkdir(parents=True)
        joblib.dump(model, package / "model.joblib")
        models[name] = {"model": model, "X": X, "package": package, "row": [float(v) for v in X[0]]}
    return models


def measure_in_process(model, X, batch, seconds):
    import numpy as np

    xb = np.ascontiguousarray(X[:batch])
    for _ in range(20):
        model.predict(xb)
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        model.predict(xb)
        calls += 1
        now = time.perf_counter()
    elapsed = now - start
    return {"batch": batch, "calls": calls, "seconds": elapsed, "calls_per_s": calls / elapsed,
            "rows_per_s": calls * batch / elapsed, "us_per_call": elapsed / calls * 1e6}


# ---------------------------------------------------------------------------------------------
# Targets and servers


@dataclass
class Target:
    server: str
    model: str
    url: str
    body: str
    kind: str  # "instances" (Serval, FastAPI) or "v2" (MLServer)
    extra: dict = field(default_factory=dict)

    def check(self):
        """One request before the load: the answer must be a 200 with one prediction."""
        status, body = http("POST", self.url, self.body, timeout=60)
        if status != 200:
            raise RuntimeError(f"{self.url} -> HTTP {status}: {body[:500].decode(errors='replace')}")
        answer = json.loads(body)
        predictions = answer["predictions"] if self.kind == "instances" else answer["outputs"][0]["data"]
        if len(predictions) != 1:
            raise RuntimeError(f"{self.url} answered {len(predictions)} predictions for one row: {answer}")
        return predictions[0]


def instances_body(row):
    return json.dumps({"instances": [row]})


def v2_body(row):
    return json.dumps({"inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}]})


@contextlib.contextmanager
def serval_server(ctx, batching):
    label = "on" if batching else "off"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = ctx.tmp / f"serval-{label}-data"
    server = Server(f"serval (batching {label})",
                    [ctx.serval, "serve", "--host", "127.0.0.1", "--port", port, "--data-dir", data_dir,
                     "--python", sys.executable],
                    ctx.tmp / f"serval-{label}.log")
    with started(server):
        wait_until_ok(f"{base}/ping", server, ctx.start_timeout)
        endpoints = {}
        for name, model in ctx.models.items():
            endpoint = f"{name}-{label}"
            http_json("POST", f"{base}/models", {"name": name, "modelDataUrl": str(model["package"])})
            http_json("POST", f"{base}/endpoint-configs", {"name": endpoint, "variants": [{
                "model": name, "instanceCount": 1,
                "maxBatchSize": MAX_BATCH if batching else 1,
                "maxQueueDelayMs": MAX_DELAY_MS if batching else 0}]})
            http_json("POST", f"{base}/endpoints", {"name": endpoint, "config": endpoint})
            endpoints[name] = endpoint
        for name, endpoint in endpoints.items():
            deadline = time.monotonic() + ctx.start_timeout
            while True:
                if server.exited():
                    raise RuntimeError(f"serval exited with {server.proc.returncode} while deploying {endpoint}")
                described = http_json("GET", f"{base}/endpoints/{endpoint}")
                status = described.get("status")
                if status == "InService":
                    break
                if status == "Failed":
                    raise RuntimeError(f"endpoint {endpoint} Failed: {described.get('failureReason')}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"endpoint {endpoint} not InService within {ctx.start_timeout:.0f} s "
                                       f"(status {status})")
                time.sleep(0.2)
        yield server, {name: Target(f"serval-{label}", name, f"{base}/endpoints/{endpoint}/invocations",
                                    instances_body(ctx.models[name]["row"]), "instances")
                       for name, endpoint in endpoints.items()}


@contextlib.contextmanager
def mlserver_server(ctx):
    root = ctx.tmp / "mlserver"
    root.mkdir()
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    settings = {"debug": False, "host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port,
                "metrics_port": metrics_port, "parallel_workers": 1}
    (root / "settings.json").write_text(json.dumps(settings, indent=2))
    for name, model in ctx.models.items():
        (root / name).mkdir()
        (root / name / "model-settings.json").write_text(json.dumps({
            "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
            "max_batch_size": MAX_BATCH, "max_batch_time": MAX_DELAY_MS / 1000,
            "parameters": {"uri": str(model["package"] / "model.joblib")}}, indent=2))
    base = f"http://127.0.0.1:{http_port}"
    server = Server("mlserver", [VENV_BIN / "mlserver", "start", root], ctx.tmp / "mlserver.log", cwd=root,
                    resignal=True)
    with started(server):
        wait_until_ok(f"{base}/v2/health/ready", server, ctx.start_timeout)
        for name in ctx.models:
            wait_until_ok(f"{base}/v2/models/{name}/ready", server, ctx.start_timeout)
        yield server, {name: Target("mlserver", name, f"{base}/v2/models/{name}/infer",
                                    v2_body(ctx.models[name]["row"]), "v2", {"settings": settings})
                       for name in ctx.models}


@contextlib.contextmanager
def fastapi_server(ctx, name):
    """FastAPI serves one model per process tree, like a SageMaker-style container."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, BENCH_MODEL_PATH=str(ctx.models[name]["package"] / "model.joblib"))
    server = Server(f"fastapi ({name})",
                    [VENV_BIN / "uvicorn", "fastapi_app:app", "--app-dir", BENCH_DIR, "--host", "127.0.0.1",
                     "--port", port, "--workers", 2, "--no-access-log", "--log-level", "warning"],
                    ctx.tmp / f"fastapi-{name}.log", env=env, resignal=True)
    with started(server):
        wait_until_ok(f"{base}/ping", server, ctx.start_timeout)
        yield server, {name: Target("fastapi", name, f"{base}/invocations",
                                    instances_body(ctx.models[name]["row"]), "instances")}


# ---------------------------------------------------------------------------------------------
# wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output):
    result = {"rps": None, "p50_ms": None, "p99_ms": None, "requests": None, "non_2xx": 0,
              "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}}
    if m := re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M):
        result["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        if m := re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", output, re.M):
            result[key] = _ms(m.group(1))
    if m := re.search(r"^\s+(\d+) requests in", output, re.M):
        result["requests"] = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        result["non_2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        result["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    result["errors"] = result["non_2xx"] + sum(result["socket_errors"].values())
    return result


def lua_script(ctx, target):
    path = ctx.tmp / f"wrk-{target.server}-{target.model}.lua"
    path.write_text('wrk.method = "POST"\n'
                    f"wrk.body = [==[{target.body}]==]\n"
                    'wrk.headers["Content-Type"] = "application/json"\n')
    return path


def run_wrk(url, script, concurrency, seconds):
    argv = ["wrk", "-t", str(min(concurrency, 2)), "-c", str(concurrency), "-d", f"{seconds}s",
            "--latency", "--timeout", "10s", "-s", str(script), url]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    output = completed.stdout + completed.stderr
    result = parse_wrk(output)
    result.update({"concurrency": concurrency, "threads": min(concurrency, 2), "duration_s": seconds,
                   "wrk_exit": completed.returncode, "wrk_output": output})
    if result["rps"] is None:
        result["errors"] = max(result["errors"], 1)
        result["problem"] = f"wrk exited {completed.returncode} without a result"
    return result


def bench_target(ctx, target):
    prediction = target.check()
    script = lua_script(ctx, target)
    run_wrk(target.url, script, 16, ctx.warmup)  # warm-up, discarded
    runs = []
    for concurrency in CONCURRENCIES:
        result = run_wrk(target.url, script, concurrency, ctx.duration)
        runs.append(result)
        flag = f"  !! {result['errors']} errors" if result["errors"] else ""
        rps = f"{result['rps']:.0f}" if result["rps"] is not None else "-"
        p50 = f"{result['p50_ms']:.2f}" if result["p50_ms"] is not None else "-"
        log(f"    {target.server:10} {target.model:4} c={concurrency:<3} {rps:>8} req/s  p50 {p50} ms{flag}")
    return {"server": target.server, "model": target.model, "url": target.url, "sample_prediction": prediction,
            "extra": target.extra, "runs": runs}


# ---------------------------------------------------------------------------------------------
# Report


def _fmt_ratio(value, base):
    if value is None or base is None or base == 0:
        return "n/a"
    return f"{value / base:.2f}x"


def print_report(ctx, inproc, results, failures):
    out = []
    by_key = {(r["server"], r["model"]): {run["concurrency"]: run for run in r["runs"]} for r in results}
    flagged = False
    out.append("")
    out.append(f"Serval benchmark ({'quick' if ctx.quick else 'full'}): wrk {ctx.duration} s per cell, "
               f"1 row per request, threads = min(c, 2); {os.cpu_count()} CPUs, shared by wrk and the server.")
    out.append("Ratios are req/s divided by the baseline's req/s at the same concurrency, measured in this run.")
    if any(s.startswith("serval") for s in ctx.servers):
        info = serval_info(ctx.serval)
        warning = "  (a DEBUG build: not representative)" if info["build"] == "debug" else ""
        out.append(f"Serval binary: {os.path.relpath(ctx.serval, REPO_DIR)}, built {info['modified']}{warning}")
    for model, spec in MODELS.items():
        b1, b32 = inproc[model]["1"], inproc[model][str(MAX_BATCH)]
        out.append("")
        out.append(f"== {model}: {spec['title']} ==")
        out.append(f"in-process predict: batch 1 {b1['rows_per_s']:,.0f} rows/s ({b1['us_per_call']:,.0f} us/call); "
                   f"batch {MAX_BATCH} {b32['rows_per_s']:,.0f} rows/s ({b32['us_per_call']:,.0f} us/call)")
        header = (f"{'server':9} {'batching':22} {'c':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
                  f" {'vs MLServer':>11} {'vs FastAPI':>10} {'vs in-proc b1':>13}")
        out.append(header)
        out.append("-" * len(header))
        for concurrency in CONCURRENCIES:
            base_ml = by_key.get(("mlserver", model), {}).get(concurrency)
            base_fa = by_key.get(("fastapi", model), {}).get(concurrency)
            ml_rps = base_ml["rps"] if base_ml and not base_ml["errors"] else None
            fa_rps = base_fa["rps"] if base_fa and not base_fa["errors"] else None
            for server in ctx.servers:
                name, batching = SERVER_LABELS[server]
                run = by_key.get((server, model), {}).get(concurrency)
                if run is None:
                    reason = failures.get(server, "not run")
                    out.append(f"{name:9} {batching:22} {concurrency:>3}   FAILED: {reason.splitlines()[0][:80]}")
                    flagged = True
                    continue
                rps = run["rps"]
                errors = f"{run['errors']} !!" if run["errors"] else "0"
                flagged |= bool(run["errors"])
                p50 = f"{run['p50_ms']:.2f}" if run["p50_ms"] is not None else "-"
                p99 = f"{run['p99_ms']:.2f}" if run["p99_ms"] is not None else "-"
                out.append(f"{name:9} {batching:22} {concurrency:>3} {rps or 0:>9,.0f} {p50:>8} {p99:>8} {errors:>7}"
                           f" {_fmt_ratio(rps, ml_rps):>11} {_fmt_ratio(rps, fa_rps):>10}"
                           f" {_fmt_ratio(rps, b1['rows_per_s']):>13}")
            out.append("")
        out.append(f"added latency at c=1 (p50 minus in-process batch-1 predict, {b1['us_per_call']:,.0f} us):")
        for server in ctx.servers:
            run = by_key.get((server, model), {}).get(1)
            if run and run["p50_ms"] is not None:
                name, batching = SERVER_LABELS[server]
                added = run["p50_ms"] * 1000 - b1["us_per_call"]
                out.append(f"  {name + ' (' + batching + ')':34} p50 {run['p50_ms'] * 1000:>8,.0f} us   "
                           f"added {added:>8,.0f} us")
    if flagged:
        out.append("")
        out.append("!! Some cells had errors (non-2xx responses or socket errors) or failed: their figures are not "
                   "comparable. See the JSON for wrk's output.")
    busy = {when: share for when, share in ctx.busy_before.items() if share > 0.15}
    if busy:
        out.append("note: other processes were using the CPU while nothing of the benchmark ran ("
                   + ", ".join(f"{share:.0%} before {when}" for when, share in busy.items())
                   + "): the figures are skewed; rerun on an idle machine.")
    print("\n".join(out), flush=True)


# ---------------------------------------------------------------------------------------------


def versions(ctx):
    found = {"python": platform.python_version(), "platform": platform.platform()}
    from importlib import metadata
    for package in ("numpy", "scikit-learn", "joblib", "mlserver", "mlserver-sklearn", "fastapi", "uvicorn",
                    "uvloop", "pydantic"):
        with contextlib.suppress(Exception):
            found[package] = metadata.version(package)
    with contextlib.suppress(Exception):
        found["wrk"] = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    with contextlib.suppress(Exception):
        found["serval_git"] = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "HEAD"], capture_output=True,
                                             text=True).stdout.strip()
    found["blas_threads_env"] = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                             "MKL_NUM_THREADS") if k in os.environ}
    return found


def serval_info(path):
    stat = os.stat(path)
    return {"path": path, "bytes": stat.st_size,
            "modified": datetime.datetime.fromtimestamp(stat.st_mtime).isoformat(timespec="seconds"),
            "build": "release" if "/release/" in os.path.realpath(path) else "debug" if "/debug/" in path else "?"}


def _on_signal(signum, _frame):
    # Ignore repeats (run.sh forwards Ctrl-C as SIGTERM too) so that the cleanup in the finally blocks
    # runs to its end.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    log(f"\ninterrupted ({signal.Signals(signum).name}): stopping the servers")
    raise SystemExit(128 + signum)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short durations, for smoke tests (3 s per cell)")
    parser.add_argument("--duration", type=float, help="seconds of wrk load per cell (default 10, --quick 3)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"comma-separated subset of {','.join(SERVERS)} (default: all)")
    parser.add_argument("--serval", default=str(REPO_DIR / ".build" / "release" / "serval"),
                        help="the serval binary (default .build/release/serval)")
    parser.add_argument("--blas-threads", type=int,
                        help="set OMP/OPENBLAS/MKL_NUM_THREADS for the in-process figures and every server")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (logs, data dirs)")
    args = parser.parse_args()

    if args.blas_threads:
        for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[key] = str(args.blas_threads)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT even when started in the background
        signal.signal(sig, _on_signal)

    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        parser.error(f"unknown server(s) {unknown}; choose from {SERVERS}")
    if any(s.startswith("serval") for s in servers) and not os.access(args.serval, os.X_OK):
        parser.error(f"no serval binary at {args.serval}: build it (swift build -c release --product serval), "
                     "pass --serval PATH, or leave Serval out with --servers mlserver,fastapi")
    if not shutil.which("wrk"):
        parser.error("wrk is not installed: apt-get install wrk")

    if args.duration is not None and (args.duration != int(args.duration) or args.duration < 1):
        parser.error("--duration must be a whole number of seconds, at least 1 (wrk takes whole seconds)")

    ctx = argparse.Namespace(
        quick=args.quick, servers=servers, serval=os.path.abspath(args.serval),
        duration=int(args.duration or (3 if args.quick else 10)), warmup=1 if args.quick else 2,
        inproc_seconds=0.5 if args.quick else 2.0, start_timeout=300.0, busy_before={},
        tmp=Path(tempfile.mkdtemp(prefix="serval-bench-")))

    results, failures, inproc = [], {}, {}
    started_at = datetime.datetime.now()
    try:
        log(f"temp dir {ctx.tmp}")
        ctx.busy_before["start"] = cpu_busy(1.0)
        log("training models (fixed seeds, synthetic data)")
        ctx.models = train_models(ctx.tmp / "packages")
        for name, model in ctx.models.items():
            inproc[name] = {str(b): measure_in_process(model["model"], model["X"], b, ctx.inproc_seconds)
                            for b in (1, MAX_BATCH)}
            log(f"  in-process {name}: batch 1 {inproc[name]['1']['rows_per_s']:,.0f} rows/s, batch {MAX_BATCH} "
                f"{inproc[name][str(MAX_BATCH)]['rows_per_s']:,.0f} rows/s")

        for server_name in servers:
            ctx.busy_before[server_name] = cpu_busy(0.5)
            log(f"{server_name}: (machine {ctx.busy_before[server_name]:.0%} busy before it started)")
            if server_name == "fastapi":
                runs = [lambda m=m: fastapi_server(ctx, m) for m in ctx.models]
            elif server_name == "mlserver":
                runs = [lambda: mlserver_server(ctx)]
            else:
                runs = [lambda b=(server_name == "serval-on"): serval_server(ctx, b)]
            Server.last_started = None
            try:
                for make in runs:
                    with make() as (_, targets):
                        for target in targets.values():
                            results.append(bench_target(ctx, target))
            except Exception as error:  # one broken server must not hide the others' figures
                failures[server_name] = f"{type(error).__name__}: {error}"
                log(f"  !! {server_name} failed: {failures[server_name]}")
                if Server.last_started is not None:
                    log(f"  last lines of {Server.last_started.log_path.name}:")
                    log(Server.last_started.log_tail())
    finally:
        Server.stop_all()
        if not args.keep_temp:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
        else:
            log(f"kept {ctx.tmp}")

    print_report(ctx, inproc, results, failures)
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    out_path = results_dir / f"{started_at:%Y%m%d-%H%M%S}{'-quick' if ctx.quick else ''}.json"
    out_path.write_text(json.dumps({
        "started_at": started_at.isoformat(timespec="seconds"), "quick": ctx.quick, "duration_s": ctx.duration,
        "concurrencies": CONCURRENCIES, "batching": {"max_batch_size": MAX_BATCH, "max_delay_ms": MAX_DELAY_MS},
        "cpus": os.cpu_count(), "cpu_busy_before": ctx.busy_before, "versions": versions(ctx),
        "serval_binary": serval_info(ctx.serval) if any(s.startswith("serval") for s in servers) else None,
        "in_process": inproc, "results": results, "failures": failures}, indent=2))
    print(f"\nraw results: {out_path.relative_to(REPO_DIR)}")


if __name__ == "__main__":
    main()
