#!/usr/bin/env python3
"""Serval's serving benchmark: Serval (SageMaker path; OIP REST JSON, REST binary, gRPC) vs MLServer and FastAPI.

Serval runs with batching off and on, over its SageMaker path and over the Open Inference Protocol v2 (REST JSON,
REST with Triton's binary tensor extension, gRPC); MLServer over OIP REST and gRPC; FastAPI + uvicorn over JSON.

Trains a LogisticRegression (20 features) and an MLPClassifier (512x512 hidden, 64 features) on
synthetic data with a fixed seed, saves them as joblib packages, measures their in-process predict
throughput at batch 1 and 32, then starts each server in turn and loads every target it serves with
one row per request at concurrency 1, 16 and 64: wrk for the HTTP targets, serval-grpc-load (bench/grpc-load,
a Swift gRPC load generator) for the gRPC ones. It prints req/s, p50, p99 and errors, the ratios against
the baselines measured in the same run and the OIP goals at c=64; it never asserts on a figure. Raw results go to
bench/results/. Run it through bench/run.sh, which provides the Python environment, wrk and the builds.
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
import struct
import subprocess
import sys
import tempfile
import threading
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
GRPC_CALLERS_PER_CONNECTION = 16  # serval-grpc-load's default: ceil(c / 16) HTTP/2 connections
GRPC_CELL_WARMUP_S = 0.5  # serval-grpc-load's own warm-up before each cell (its connections are new)
SERVERS = ("serval-off", "serval-on", "serval-oip-json", "serval-oip-binary", "serval-grpc", "mlserver",
           "mlserver-grpc", "fastapi")
# (server, protocol, batching) for the tables.
SERVER_LABELS = {
    "serval-off": ("Serval", "SageMaker JSON", "off"),
    "serval-on": ("Serval", "SageMaker JSON", f"{MAX_BATCH}/{MAX_DELAY_MS}ms"),
    "serval-oip-json": ("Serval", "OIP REST JSON", f"{MAX_BATCH}/{MAX_DELAY_MS}ms"),
    "serval-oip-binary": ("Serval", "OIP REST binary", f"{MAX_BATCH}/{MAX_DELAY_MS}ms"),
    "serval-grpc": ("Serval", "OIP gRPC", f"{MAX_BATCH}/{MAX_DELAY_MS}ms"),
    "mlserver": ("MLServer", "OIP REST JSON", f"adaptive {MAX_BATCH}/{MAX_DELAY_MS}ms"),
    "mlserver-grpc": ("MLServer", "OIP gRPC", f"adaptive {MAX_BATCH}/{MAX_DELAY_MS}ms"),
    "fastapi": ("FastAPI", "JSON", "none, 2 workers"),
}
# One process serves several targets: the batching-on Serval serves the SageMaker path and the three OIP
# protocols from the same endpoints, MLServer serves REST and gRPC. Groups run in this order.
GROUPS = {
    "serval-off": ("serval-off",),
    "serval-on": ("serval-on", "serval-oip-json", "serval-oip-binary", "serval-grpc"),
    "mlserver": ("mlserver", "mlserver-grpc"),
    "fastapi": ("fastapi",),
}
# "vs MLServer" compares with MLServer's same protocol: gRPC with its gRPC, everything else with its OIP REST
# JSON (MLServer's REST has no binary tensor extension).
MLSERVER_BASELINE = {server: "mlserver-grpc" if server.endswith("grpc") else "mlserver" for server in SERVERS}
SAGEMAKER_PATH = "serval-on"
# The goals at c=64, batching on: (row, baseline, minimum ratio, what).
GOALS = (
    ("serval-oip-json", SAGEMAKER_PATH, 0.85, "OIP REST JSON within 15% of the SageMaker path"),
    ("serval-oip-binary", SAGEMAKER_PATH, 1.0, "OIP REST binary at least as fast as the SageMaker path"),
    ("serval-grpc", SAGEMAKER_PATH, 1.0, "OIP gRPC at least as fast as the SageMaker path"),
    ("serval-oip-json", "mlserver", 10.0, "OIP REST JSON vs MLServer OIP REST JSON"),
    ("serval-oip-binary", "mlserver", 10.0,
     "OIP REST binary vs MLServer OIP REST JSON (MLServer's REST has no binary extension)"),
    ("serval-grpc", "mlserver-grpc", 10.0, "OIP gRPC vs MLServer OIP gRPC"),
)
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


def http_request(method, url, body=None, headers=None, timeout=30.0):
    """Returns (status, response headers, body bytes); raises only when no HTTP answer came."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def http(method, url, body=None, content_type="application/json", timeout=30.0):
    """Returns (status, body bytes); raises only when no HTTP answer came."""
    headers = {"Content-Type": content_type} if body is not None else None
    status, _, data = http_request(method, url, body, headers, timeout)
    return status, data


def http_json(method, url, payload=None, expect=(200, 201, 202)):
    status, body = http(method, url, None if payload is None else json.dumps(payload))
    if status not in expect:
        raise RuntimeError(f"{method} {url} -> HTTP {status}: {body[:500].decode(errors='replace')}")
    return json.loads(body) if body else {}


def epoch(iso):
    """Seconds since the epoch of Serval's ISO-8601 UTC timestamps (2026-01-02T03:04:05.678Z)."""
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


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


def train_models(package_root, names=tuple(MODELS)):
    """Train the named models of MODELS (fixed seeds) and save each as a joblib package under package_root."""
    import warnings

    import joblib
    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    trained = {}
    if "lr" in names:
        X, y = make_classification(n_samples=5000, n_features=20, n_informative=10, random_state=0)
        trained["lr"] = (LogisticRegression(max_iter=1000).fit(X, y), X)
    if "mlp" in names:
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
    """One thing to load: a server's model over one protocol.

    kind: "instances" (SageMaker-style JSON: Serval, FastAPI), "v2" (OIP REST JSON), "v2-binary" (OIP REST with
    Triton's binary tensor extension) or "grpc" (OIP gRPC, loaded by serval-grpc-load; url is HOST:PORT).
    """
    server: str
    model: str
    url: str
    kind: str
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    grpc_args: list = field(default_factory=list)  # serval-grpc-load's --model, --datatype, ... options
    extra: dict = field(default_factory=dict)

    def check(self, ctx):
        """One request before the load: the answer must be a success with one prediction."""
        if self.kind == "grpc":
            argv = [ctx.grpc_load, "--target", self.url, *self.grpc_args, "--check", "--timeout", "60"]
            completed = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120)
            if completed.returncode != 0:
                raise RuntimeError(f"gRPC {self.url} {' '.join(self.grpc_args)}: "
                                   f"{(completed.stderr or completed.stdout).strip()[:500]}")
            answer = json.loads(completed.stdout)
            predictions = answer["outputs"][0]["data"]
        else:
            status, headers, body = http_request("POST", self.url, self.body, self.headers, timeout=60)
            if status != 200:
                raise RuntimeError(f"{self.url} -> HTTP {status}: {body[:500].decode(errors='replace')}")
            if self.kind == "instances":
                answer = json.loads(body)
                predictions = answer["predictions"]
            else:
                answer, predictions = decode_v2_response(headers, body)
        if len(predictions) != 1:
            raise RuntimeError(f"{self.url} answered {len(predictions)} predictions for one row: {answer}")
        return predictions[0]


def instances_body(row):
    return json.dumps({"instances": [row]}).encode()


def v2_body(row, datatype="FP64", outputs=None):
    payload = {"inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": datatype, "data": row}]}
    if outputs:
        payload["outputs"] = [{"name": name} for name in outputs]
    return json.dumps(payload).encode()


def v2_binary_body(row, output):
    """Triton's binary tensor extension both ways: the JSON header, then the row as little-endian FP32; the
    output comes back as raw bytes too (what tritonclient.http does by default). Returns (body, headers)."""
    header = json.dumps({
        "inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP32",
                    "parameters": {"binary_data_size": 4 * len(row)}}],
        "outputs": [{"name": output, "parameters": {"binary_data": True}}]}).encode()
    return header + struct.pack(f"<{len(row)}f", *row), {
        "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))}


_BINARY_FORMATS = {"INT64": "q", "INT32": "i", "FP64": "d", "FP32": "f", "BOOL": "?", "UINT8": "B"}


def decode_v2_response(headers, body):
    """An OIP REST infer answer (JSON, or a JSON header and raw output bytes): (the JSON, the first output's data)."""
    header_length = headers.get("Inference-Header-Content-Length")
    if header_length is None:
        answer = json.loads(body)
        return answer, answer["outputs"][0]["data"]
    header_length = int(header_length)
    answer = json.loads(body[:header_length])
    output = answer["outputs"][0]
    size = output.get("parameters", {}).get("binary_data_size")
    if size is None:
        return answer, output["data"]
    fmt = _BINARY_FORMATS[output["datatype"]]
    raw = body[header_length:header_length + size]
    return answer, list(struct.unpack(f"<{size // struct.calcsize(fmt)}{fmt}", raw))


def wait_for_log_line(server, pattern, timeout):
    """Waits until the server's log has a line matching pattern; returns the match."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if m := re.search(pattern, server.log_path.read_text(errors="replace"), re.M):
                return m
        if server.exited():
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode} before logging /{pattern}/")
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not log /{pattern}/ within {timeout:.0f} s")


def finish_run(ctx, keep_temp):
    """Stops every server the run started and removes its temporary folder (unless kept)."""
    Server.stop_all()
    if keep_temp:
        log(f"kept {ctx.tmp}")
    else:
        shutil.rmtree(ctx.tmp, ignore_errors=True)


def save_results(name, started_at, results, **extra):
    """Writes the raw results to bench/results/NAME-TIME.json, says where, and exits 1 if anything failed."""
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    out_path = results_dir / f"{name}-{started_at:%Y%m%d-%H%M%S}.json"
    out_path.write_text(json.dumps({"started_at": started_at.isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                                    **extra, **results}, indent=2, default=str))
    print(f"\nraw results: {out_path.relative_to(REPO_DIR)}")
    if results["failures"]:
        sys.exit(1)


@contextlib.contextmanager
def serval_process(ctx, label, data_dir=None):
    """A fresh Serval process (ports 0; its own data dir, ``ctx.tmp/<label>-data`` unless named); yields (server,
    http (host, port), S3 base URL)."""
    data_dir = data_dir or ctx.tmp / f"{label}-data"
    (ctx.tmp / "packages").mkdir(parents=True, exist_ok=True)  # the --model-source-root the packages are created in
    server = Server(f"serval ({label})",
                    [ctx.serval, "serve", "--host", "127.0.0.1", "--port", 0, "--grpc-port", 0, "--s3-port", 0,
                     "--data-dir", data_dir, "--python", sys.executable, "--worker-path", REPO_DIR / "python",
                     "--model-source-root", ctx.tmp / "packages"],
                    ctx.tmp / f"{label}.log")
    with started(server):
        http_match = wait_for_log_line(server, r"Serval is listening on http://([\d.]+):(\d+)", ctx.start_timeout)
        wait_for_log_line(server, r"Serval gRPC is listening on [\d.]+:\d+", ctx.start_timeout)
        s3_match = wait_for_log_line(server, r"Serval S3 is listening on (http://[\d.]+:\d+)", ctx.start_timeout)
        yield server, (http_match.group(1), int(http_match.group(2))), s3_match.group(1)


@contextlib.contextmanager
def serval_server(ctx, batching, selected):
    """One Serval process with one endpoint per model; yields the selected targets on those endpoints. With
    batching on, the SageMaker path and the three OIP protocols share the same endpoints (and process)."""
    label = "on" if batching else "off"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = ctx.tmp / f"serval-{label}-data"
    (ctx.tmp / "packages").mkdir(parents=True, exist_ok=True)  # the --model-source-root the packages are created in
    server = Server(f"serval (batching {label})",
                    [ctx.serval, "serve", "--host", "127.0.0.1", "--port", port, "--grpc-port", 0,
                     "--data-dir", data_dir, "--python", sys.executable, "--model-source-root", ctx.tmp / "packages"],
                    ctx.tmp / f"serval-{label}.log")
    with started(server):
        wait_until_ok(f"{base}/ping", server, ctx.start_timeout)
        grpc_port = int(wait_for_log_line(server, r"^Serval gRPC is listening on [\d.]+:(\d+)",
                                          ctx.start_timeout).group(1))
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
        targets = []
        extra = {"grpc_port": grpc_port}
        for kind in selected:
            for name, endpoint in endpoints.items():
                row, n = ctx.models[name]["row"], len(ctx.models[name]["row"])
                oip = f"{base}/v2/models/{endpoint}/infer"
                if kind in ("serval-off", "serval-on"):
                    targets.append(Target(kind, name, f"{base}/endpoints/{endpoint}/invocations", "instances",
                                          instances_body(row), {"Content-Type": "application/json"}, extra=extra))
                elif kind == "serval-oip-json":
                    targets.append(Target(kind, name, oip, "v2", v2_body(row, "FP32", ["predict"]),
                                          {"Content-Type": "application/json"}, extra=extra))
                elif kind == "serval-oip-binary":
                    body, headers = v2_binary_body(row, "predict")
                    targets.append(Target(kind, name, oip, "v2-binary", body, headers, extra=extra))
                elif kind == "serval-grpc":
                    targets.append(Target(kind, name, f"127.0.0.1:{grpc_port}", "grpc", grpc_args=[
                        "--model", endpoint, "--input-name", "input-0", "--datatype", "FP32", "--features", n,
                        "--rows", 1, "--output", "predict"], extra=extra))
        yield server, targets


@contextlib.contextmanager
def mlserver_server(ctx, selected):
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
        # Both protocols send the row as FP64 (what the model was trained on) and ask for no particular output:
        # MLServer's scikit-learn runtime answers `predict` alone by default.
        targets = []
        for kind in selected:
            for name in ctx.models:
                row = ctx.models[name]["row"]
                if kind == "mlserver":
                    targets.append(Target(kind, name, f"{base}/v2/models/{name}/infer", "v2", v2_body(row, "FP64"),
                                          {"Content-Type": "application/json"}, extra={"settings": settings}))
                elif kind == "mlserver-grpc":
                    targets.append(Target(kind, name, f"127.0.0.1:{grpc_port}", "grpc", grpc_args=[
                        "--model", name, "--input-name", "input-0", "--datatype", "FP64", "--features", len(row),
                        "--rows", 1], extra={"settings": settings}))
        yield server, targets


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
        yield server, [Target("fastapi", name, f"{base}/invocations", "instances",
                              instances_body(ctx.models[name]["row"]), {"Content-Type": "application/json"})]


def group_runs(ctx, group, selected):
    """The server starts of a group (FastAPI: one per model), each a context manager yielding (server, targets)."""
    if group == "fastapi":
        return [lambda m=m: fastapi_server(ctx, m) for m in ctx.models]
    if group == "mlserver":
        return [lambda: mlserver_server(ctx, selected)]
    return [lambda: serval_server(ctx, group == "serval-on", selected)]


# ---------------------------------------------------------------------------------------------
# Load: wrk for HTTP, serval-grpc-load for gRPC. Both report requests, req/s, p50, p99 and errors.

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output):
    result = {"rps": None, "p50_ms": None, "p90_ms": None, "p99_ms": None, "requests": None, "non_2xx": 0,
              "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}}
    if m := re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M):
        result["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
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
    """wrk's script: the body is read from a file in binary mode (the binary target's body is not text)."""
    body_path = ctx.tmp / f"body-{target.server}-{target.model}.bin"
    body_path.write_bytes(target.body)
    path = ctx.tmp / f"wrk-{target.server}-{target.model}.lua"
    lines = ['wrk.method = "POST"',
             f'local file = assert(io.open("{body_path}", "rb"))',
             'wrk.body = file:read("*a")',
             "file:close()"]
    lines += [f'wrk.headers["{key}"] = "{value}"' for key, value in target.headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(url, script, concurrency, seconds):
    argv = ["wrk", "-t", str(min(concurrency, 2)), "-c", str(concurrency), "-d", f"{seconds}s",
            "--latency", "--timeout", "10s", "-s", str(script), url]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    output = completed.stdout + completed.stderr
    result = parse_wrk(output)
    result.update({"tool": "wrk", "concurrency": concurrency, "threads": min(concurrency, 2), "duration_s": seconds,
                   "wrk_exit": completed.returncode, "wrk_output": output})
    if result["rps"] is None:
        result["errors"] = max(result["errors"], 1)
        result["problem"] = f"wrk exited {completed.returncode} without a result"
    return result


def run_grpc_load(ctx, target, concurrency, seconds, warmup):
    argv = [ctx.grpc_load, "--target", target.url, *target.grpc_args, "--concurrency", concurrency,
            "--duration", seconds, "--warmup", warmup]
    completed = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                               timeout=seconds + warmup + 60)
    output = completed.stdout + completed.stderr
    result = {"rps": None, "p50_ms": None, "p90_ms": None, "p99_ms": None, "requests": None, "errors": 0}
    line = next((l for l in reversed(completed.stdout.splitlines()) if l.startswith("{")), None)
    if line:
        result.update(json.loads(line))
    result.update({"tool": "serval-grpc-load", "concurrency": concurrency, "duration_s": seconds,
                   "loadgen_exit": completed.returncode, "loadgen_output": output})
    if line is None or result["rps"] is None:
        result["errors"] = max(result["errors"] or 0, 1)
        result["problem"] = f"serval-grpc-load exited {completed.returncode} without a result: {output.strip()[:300]}"
    elif result["requests"] == 0:
        result["rps"] = None
        result["errors"] = max(result["errors"], 1)
        result["problem"] = "no request succeeded"
    return result


def process_cpu_seconds(pid):
    """User + system CPU seconds of one process (without its children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid):
    """User + system CPU seconds of a process and its live descendants (from /proc)."""
    total = 0
    for p in [pid] + _descendants(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class RSSSampler:
    """Samples Serval's VmRSS and its workers' (its descendants', summed) every `interval` seconds."""

    def __init__(self, pid, interval):
        self.pid, self.interval, self.samples, self.phases = pid, interval, [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        children, refreshed = [], 0.0
        while not self._stop.is_set():
            now = time.time()
            if now - refreshed > 0.5:  # a whole /proc scan costs too much to do at every sample
                children, refreshed = _descendants(self.pid), now
            workers = 0
            for child in children:
                with contextlib.suppress(OSError, KeyError, ValueError):
                    workers += rss_kb(child)[0]
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.samples.append((now, rss_kb(self.pid)[0], workers))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @contextlib.contextmanager
    def phase(self, name):
        start = time.time()
        log(f"  {name}…")
        try:
            yield
        finally:
            self.phases.append((name, start, time.time()))

    def report(self):
        phases = {}
        for name, start, end in self.phases:
            inside = [s for s in self.samples if start <= s[0] <= end]
            phases[name] = {"seconds": end - start, "samples": len(inside),
                            "serval_peak_mb": max((s[1] for s in inside), default=0) / 1024,
                            "workers_peak_mb": max((s[2] for s in inside), default=0) / 1024}
        return phases


def with_cpu(server, load):
    """Runs load() and adds the CPU time the load generator and the server (with its workers) used, per request."""
    before_gen, before_srv = os.times(), tree_cpu_seconds(server.proc.pid)
    result = load()
    after_gen, after_srv = os.times(), tree_cpu_seconds(server.proc.pid)
    gen = (after_gen.children_user + after_gen.children_system) - (before_gen.children_user + before_gen.children_system)
    srv = after_srv - before_srv
    # Every request answered while the generator ran (serval-grpc-load's own warm-up included).
    answered = (result.get("requests") or 0) + (result.get("warmup_requests") or 0)
    result.update({"loadgen_cpu_s": gen, "server_cpu_s": srv,
                   "loadgen_us_per_req": gen / answered * 1e6 if answered else None,
                   "server_us_per_req": srv / answered * 1e6 if answered else None})
    return result


def bench_target(ctx, target, server):
    prediction = target.check(ctx)
    if target.kind == "grpc":
        run_grpc_load(ctx, target, 16, ctx.warmup, 0)  # warm-up, discarded
        load = lambda c: run_grpc_load(ctx, target, c, ctx.duration, GRPC_CELL_WARMUP_S)  # noqa: E731
    else:
        script = lua_script(ctx, target)
        run_wrk(target.url, script, 16, ctx.warmup)  # warm-up, discarded
        load = lambda c: run_wrk(target.url, script, c, ctx.duration)  # noqa: E731
    runs = []
    for concurrency in CONCURRENCIES:
        result = with_cpu(server, lambda: load(concurrency))
        runs.append(result)
        flag = f"  !! {result['errors']} errors" if result["errors"] else ""
        if result.get("first_error"):
            flag += f" (first: {result['first_error'][:120]})"
        rps = f"{result['rps']:.0f}" if result["rps"] is not None else "-"
        p50 = f"{result['p50_ms']:.2f}" if result["p50_ms"] is not None else "-"
        cpu = (f"  cpu/req: server {result['server_us_per_req']:.0f} us, load generator {result['loadgen_us_per_req']:.0f} us"
               if result["server_us_per_req"] is not None else "")
        log(f"    {target.server:17} {target.model:4} c={concurrency:<3} {rps:>8} req/s  p50 {p50} ms{cpu}{flag}")
    return {"server": target.server, "model": target.model, "protocol": SERVER_LABELS[target.server][1],
            "kind": target.kind, "url": target.url, "sample_prediction": prediction, "extra": target.extra,
            "runs": runs}


# ---------------------------------------------------------------------------------------------
# Report


def _fmt_ratio(value, base):
    if value is None or base is None or base == 0:
        return "n/a"
    return f"{value / base:.2f}x"


def _fmt_us(value):
    return "-" if value is None else f"{value:,.0f}"


def print_report(ctx, inproc, results, failures):
    out = []
    by_key = {(r["server"], r["model"]): {run["concurrency"]: run for run in r["runs"]} for r in results}
    flagged = False

    def clean_rps(server, model, concurrency):
        """req/s of a cell that ran without errors, else None (a baseline with errors is not comparable)."""
        run = by_key.get((server, model), {}).get(concurrency)
        return run["rps"] if run and not run["errors"] else None

    out.append("")
    out.append(f"Serval benchmark ({'quick' if ctx.quick else 'full'}): {ctx.duration} s per cell, 1 row per request; "
               f"HTTP by wrk (threads = min(c, 2), c connections), gRPC by serval-grpc-load (c callers on "
               f"ceil(c/{GRPC_CALLERS_PER_CONNECTION}) HTTP/2 connections); {os.cpu_count()} CPUs, shared by the "
               "load generator and the server.")
    out.append("Ratios are req/s divided by the baseline's req/s at the same concurrency, measured in this run. "
               "vs MLServer: MLServer's same protocol (gRPC vs its gRPC; everything else vs its OIP REST JSON, "
               "MLServer having no REST binary extension). vs SM path: Serval's SageMaker path, batching on.")
    out.append("srv us/req, gen us/req: CPU time per answered request of the server (with its workers) and of the "
               "load generator; on 2 shared cores, what the generator burns is taken from the server.")
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
        header = (f"{'server':8} {'protocol':15} {'batching':20} {'c':>3} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
                  f" {'errors':>7} {'vs MLServer':>11} {'vs SM path':>10} {'vs FastAPI':>10} {'vs in-proc b1':>13}"
                  f" {'srv us/req':>10} {'gen us/req':>10}")
        out.append(header)
        out.append("-" * len(header))
        for concurrency in CONCURRENCIES:
            sm_rps = clean_rps(SAGEMAKER_PATH, model, concurrency)
            fa_rps = clean_rps("fastapi", model, concurrency)
            for server in ctx.servers:
                name, protocol, batching = SERVER_LABELS[server]
                run = by_key.get((server, model), {}).get(concurrency)
                if run is None:
                    reason = failures.get(server, "not run")
                    out.append(f"{name:8} {protocol:15} {batching:20} {concurrency:>3}   "
                               f"FAILED: {reason.splitlines()[0][:80]}")
                    flagged = True
                    continue
                rps = run["rps"]
                ml_rps = clean_rps(MLSERVER_BASELINE[server], model, concurrency)
                errors = f"{run['errors']} !!" if run["errors"] else "0"
                flagged |= bool(run["errors"])
                p50 = f"{run['p50_ms']:.2f}" if run["p50_ms"] is not None else "-"
                p99 = f"{run['p99_ms']:.2f}" if run["p99_ms"] is not None else "-"
                out.append(f"{name:8} {protocol:15} {batching:20} {concurrency:>3} {rps or 0:>8,.0f} {p50:>7} {p99:>7}"
                           f" {errors:>7} {_fmt_ratio(rps, ml_rps):>11} {_fmt_ratio(rps, sm_rps):>10}"
                           f" {_fmt_ratio(rps, fa_rps):>10} {_fmt_ratio(rps, b1['rows_per_s']):>13}"
                           f" {_fmt_us(run.get('server_us_per_req')):>10} {_fmt_us(run.get('loadgen_us_per_req')):>10}")
            out.append("")
        out.append(f"added latency at c=1 (p50 minus in-process batch-1 predict, {b1['us_per_call']:,.0f} us):")
        for server in ctx.servers:
            run = by_key.get((server, model), {}).get(1)
            if run and run["p50_ms"] is not None:
                name, protocol, batching = SERVER_LABELS[server]
                added = run["p50_ms"] * 1000 - b1["us_per_call"]
                out.append(f"  {name + ' ' + protocol + ' (' + batching + ')':48} p50 {run['p50_ms'] * 1000:>8,.0f} us"
                           f"   added {added:>8,.0f} us")
        goals = [g for g in GOALS if g[0] in ctx.servers and g[1] in ctx.servers]
        if goals:
            c = CONCURRENCIES[-1]
            out.append(f"OIP goals at c={c} (batching on):")
            for row, base, minimum, what in goals:
                rps, base_rps = clean_rps(row, model, c), clean_rps(base, model, c)
                if rps is None or base_rps is None:
                    verdict, ratio = "n/a (a cell failed or had errors)", "n/a"
                else:
                    ratio = f"{rps / base_rps:.2f}x"
                    verdict = "met" if rps / base_rps >= minimum else "NOT met"
                out.append(f"  {what + ':':88} {ratio:>7}  (goal >= {minimum:.2f}x)  {verdict}")
    if flagged:
        out.append("")
        out.append("!! Some cells had errors (non-2xx responses, socket or RPC errors) or failed: their figures are not "
                   "comparable. See the JSON for the load generator's output.")
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
    """The binary's size, time and build; its path relative to the repository (only its name when outside), so that
    result files name no folder of the machine."""
    stat = os.stat(path)
    real = Path(os.path.realpath(path))
    shown = str(real.relative_to(REPO_DIR)) if real.is_relative_to(REPO_DIR) else real.name
    return {"path": shown, "bytes": stat.st_size,
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
    parser.add_argument("--duration", type=float, help="seconds of load per cell (default 10, --quick 3)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"comma-separated subset of {','.join(SERVERS)} (default: all)")
    parser.add_argument("--serval", default=str(REPO_DIR / ".build" / "release" / "serval"),
                        help="the serval binary (default .build/release/serval)")
    parser.add_argument("--grpc-load", default=str(REPO_DIR / ".build" / "release" / "serval-grpc-load"),
                        help="the gRPC load generator (default .build/release/serval-grpc-load; "
                             "swift build -c release --product serval-grpc-load)")
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
    servers = [s for s in SERVERS if s in servers]  # run and report in a fixed order
    if any(s.startswith("serval") for s in servers) and not os.access(args.serval, os.X_OK):
        parser.error(f"no serval binary at {args.serval}: build it (swift build -c release --product serval), "
                     "pass --serval PATH, or leave Serval out with --servers mlserver,fastapi")
    if any(not s.endswith("grpc") for s in servers) and not shutil.which("wrk"):
        parser.error("wrk is not installed: apt-get install wrk")
    if any(s.endswith("grpc") for s in servers) and not os.access(args.grpc_load, os.X_OK):
        parser.error(f"no gRPC load generator at {args.grpc_load}: build it (swift build -c release --product "
                     "serval-grpc-load), pass --grpc-load PATH, or leave the gRPC targets out with --servers")

    if args.duration is not None and (args.duration != int(args.duration) or args.duration < 1):
        parser.error("--duration must be a whole number of seconds, at least 1 (wrk takes whole seconds)")

    ctx = argparse.Namespace(
        quick=args.quick, servers=servers, serval=os.path.abspath(args.serval),
        grpc_load=os.path.abspath(args.grpc_load),
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

        for group, members in GROUPS.items():
            selected = [s for s in members if s in servers]
            if not selected:
                continue
            ctx.busy_before[group] = cpu_busy(0.5)
            log(f"{group} ({', '.join(selected)}): (machine {ctx.busy_before[group]:.0%} busy before it started)")
            Server.last_started = None
            try:
                for make in group_runs(ctx, group, selected):
                    with make() as (server, targets):
                        for target in targets:
                            try:
                                results.append(bench_target(ctx, target, server))
                            except Exception as error:  # one broken target must not hide the others' figures
                                reason = f"{target.model}: {type(error).__name__}: {error}"
                                failures[target.server] = "; ".join(filter(None, [failures.get(target.server),
                                                                                    reason]))
                                log(f"  !! {target.server} failed: {reason}")
            except Exception as error:  # one broken server must not hide the others' figures
                for server_name in selected:
                    failures.setdefault(server_name, f"{type(error).__name__}: {error}")
                log(f"  !! {group} failed: {type(error).__name__}: {error}")
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
        "grpc_load_binary": serval_info(ctx.grpc_load) if any(s.endswith("grpc") for s in servers) else None,
        "in_process": inproc, "results": results, "failures": failures}, indent=2))
    print(f"\nraw results: {out_path.relative_to(REPO_DIR)}")


if __name__ == "__main__":
    main()
