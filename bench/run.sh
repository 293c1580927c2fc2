#!/usr/bin/env bash
# Serval's serving benchmark. Usage: bench/run.sh [--quick] [more bench.py options, see --help]
#        The async inference benchmark: bench/run.sh async [--quick] [more async.py options, see async --help]
#        The batch transform benchmark: bench/run.sh transform [--quick] [more transform.py options, see transform --help]
#        The object store benchmark: bench/run.sh objects [--size-mb N] [more objects.py options, see objects --help]
#        What observing costs: bench/run.sh metrics [--quick] [--baseline OLD_SERVAL] [more metrics.py options]
#
# Provides bench/.venv (numpy, scikit-learn, joblib, MLServer 1.7, mlserver-sklearn, FastAPI, uvicorn, boto3),
# checks for wrk, builds Serval and bench/grpc-load (serval-grpc-load) in release mode if they are missing,
# then runs bench/bench.py (or bench/async.py, bench/transform.py, bench/objects.py) with that venv's Python. Environment:
# BENCH_PYTHON picks the interpreter for the venv (MLServer 1.7 needs Python 3.9 to 3.12).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$BENCH_DIR")"
VENV="$BENCH_DIR/.venv"
cd "$REPO_DIR"

# `bench/run.sh async ...` runs bench/async.py, `bench/run.sh transform ...` bench/transform.py,
# `bench/run.sh metrics ...` bench/metrics.py and `bench/run.sh objects ...` bench/objects.py (none needs the gRPC load generator; transform.py and objects.py not wrk
# either) instead of bench/bench.py.
script="$BENCH_DIR/bench.py"
if [[ "${1:-}" == async || "${1:-}" == transform || "${1:-}" == objects || "${1:-}" == metrics ]]; then
    script="$BENCH_DIR/$1.py"
    shift
fi

# --- wrk -------------------------------------------------------------------------------------
if [[ "$script" != "$BENCH_DIR/transform.py" && "$script" != "$BENCH_DIR/objects.py" ]] && ! command -v wrk >/dev/null 2>&1; then
    echo "bench: wrk is not installed. Install it with: sudo apt-get install wrk" >&2
    exit 1
fi

# --- the Python environment ------------------------------------------------------------------
python_ok() {  # MLServer 1.7 supports Python 3.9 to 3.12
    "$1" -c 'import sys; sys.exit(not ((3, 9) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null
}
stamp="$(sha256sum "$BENCH_DIR/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" ]] || [[ "$(cat "$VENV/.requirements-sha256" 2>/dev/null)" != "$stamp" ]] \
    || ! "$VENV/bin/python" -c 'import numpy, sklearn, joblib, mlserver, mlserver_sklearn, fastapi, uvicorn, boto3' 2>/dev/null; then
    base_python=""
    for candidate in ${BENCH_PYTHON:-} python3 python3.12 python3.11 python3.10 python3.9; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$(command -v "$candidate")"; then
            base_python="$(command -v "$candidate")"
            break
        fi
    done
    if [[ -z "$base_python" ]]; then
        echo "bench: MLServer 1.7 needs Python 3.9 to 3.12; none found (set BENCH_PYTHON)." >&2
        exit 1
    fi
    echo "bench: preparing $VENV with $base_python" >&2
    if [[ ! -x "$VENV/bin/python" ]] || ! python_ok "$VENV/bin/python"; then
        rm -rf "$VENV"
        "$base_python" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -r "$BENCH_DIR/requirements.txt"
    echo "$stamp" >"$VENV/.requirements-sha256"
fi

# --- Serval and the gRPC load generator -----------------------------------------------------------
# Serval is built only when a Serval configuration is benchmarked and no binary was named with --serval;
# serval-grpc-load (bench/grpc-load) only when a gRPC target is and none was named with --grpc-load.
needs_serval=1
serval_given=0
needs_grpc_load=1
[[ "$script" == "$BENCH_DIR/bench.py" ]] || needs_grpc_load=0
grpc_load_given=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    servers=""
    case "${args[$i]}" in
        --serval | --serval=*) serval_given=1 ;;
        --skip-jobs) needs_serval=0 ;;
        --grpc-load | --grpc-load=*) grpc_load_given=1 ;;
        --servers) servers="${args[$((i + 1))]:-}" ;;
        --servers=*) servers="${args[$i]#--servers=}" ;;
        -h | --help) needs_serval=0 needs_grpc_load=0 ;;
    esac
    if [[ "${args[$i]}" == --servers || "${args[$i]}" == --servers=* ]]; then
        [[ "$servers" == *serval* ]] || needs_serval=0
        [[ "$servers" == *grpc* ]] || needs_grpc_load=0
    fi
done
if [[ $needs_serval == 1 && $serval_given == 0 && ! -x "$REPO_DIR/.build/release/serval" ]]; then
    echo "bench: building Serval in release mode (swift build -c release --product serval)" >&2
    swift build -c release --product serval
fi
if [[ $needs_grpc_load == 1 && $grpc_load_given == 0 && ! -x "$REPO_DIR/.build/release/serval-grpc-load" ]]; then
    echo "bench: building the gRPC load generator (swift build -c release --product serval-grpc-load)" >&2
    swift build -c release --product serval-grpc-load
fi

# --- run -------------------------------------------------------------------------------------
# bench.py stops every server it started when it ends, on Ctrl-C and on SIGTERM; this trap forwards
# SIGTERM/SIGHUP (and Ctrl-C) to it and waits for its cleanup.
child=""
forward() {
    if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
}
trap 'forward; exit 130' INT
trap 'forward; exit 143' TERM
trap 'forward; exit 129' HUP
"$VENV/bin/python" "$script" "$@" &
child=$!
status=0
wait "$child" || status=$?
child=""
exit "$status"
