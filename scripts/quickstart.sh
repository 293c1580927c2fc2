#!/usr/bin/env bash
# Builds Serval, trains a small scikit-learn model, starts Serval, deploys the model, shows predictions and prints
# commands to try. Serval keeps serving afterwards; Ctrl-C stops it. Every command it shows works as typed.
#
# Environment: PORT, GRPC_PORT, S3_PORT (default 8080, 8081, 9000); DATA_DIR (default .serval); SERVAL, a serval
# binary to use instead of building one; PYTHON, an interpreter with python/requirements-runtime.txt installed, used
# instead of making .build/quickstart-venv; MODEL_DIR, where the example model goes (default .build/quickstart-model).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8080}
grpc_port=${GRPC_PORT:-8081}
s3_port=${S3_PORT:-9000}
data=${DATA_DIR:-.serval}
model=${MODEL_DIR:-.build/quickstart-model}

# Builds the release binary, showing the build's progress (its [N/M] steps) instead of the compiler's output, which
# goes to a log file that is named when the build fails.
build_serval() {
  local log=.build/quickstart-build.log title="== Building Serval (release; the first build takes several minutes)"
  local start=$SECONDS shown=-1 line percent
  mkdir -p .build
  if [ -t 1 ]; then printf '%s' "$title"; else echo "$title"; fi
  if ! swift build -c release --product serval 2>&1 | while IFS= read -r line; do
    printf '%s\n' "$line" >&3
    if [[ $line =~ ^\[([0-9]+)/([0-9]+)\] ]]; then
      if [ -t 1 ]; then
        printf '\r%s [%s/%s]' "$title" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
      else
        percent=$((BASH_REMATCH[1] * 100 / BASH_REMATCH[2] / 10 * 10))
        if [ "$percent" -gt "$shown" ]; then shown=$percent; echo "   $percent% [${BASH_REMATCH[1]}/${BASH_REMATCH[2]}]"; fi
      fi
    elif [[ $line == Fetching* ]] && [ "$shown" = -1 ]; then
      shown=0
      if [ -t 1 ]; then printf '\r%s (fetching the dependencies)' "$title"; else echo "   fetching the dependencies"; fi
    fi
  done 3>"$log"; then
    [ -t 1 ] && echo
    echo "error: the build failed; its errors:" >&2
    grep -E 'error:' "$log" | head -20 >&2 || true
    echo "The whole build log is in $PWD/$log" >&2
    exit 1
  fi
  [ -t 1 ] && echo
  echo "   built in $((SECONDS - start)) s (the build log is in $log)"
}

if [ -n "${SERVAL:-}" ]; then
  serval=$SERVAL
else
  build_serval
  serval=$(swift build -c release --show-bin-path)/serval
fi

if [ -n "${PYTHON:-}" ]; then
  python=$PYTHON
else
  python=.build/quickstart-venv/bin/python
  if [ ! -x "$python" ]; then
    echo "== Making a Python environment with scikit-learn (.build/quickstart-venv)"
    python3 -m venv .build/quickstart-venv
    "$python" -m pip install -q --disable-pip-version-check -r python/requirements-runtime.txt
  fi
fi
echo "== Training the example model (a scikit-learn pipeline on the iris data set)"
"$python" examples/quickstart/train.py "$model"

echo "== Starting Serval on http://127.0.0.1:$port (data in $data)"
"$serval" serve --port "$port" --grpc-port "$grpc_port" --s3-port "$s3_port" --data-dir "$data" --python "$python" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
export SERVAL_URL="http://127.0.0.1:$port"
deadline=$((SECONDS + 60))
until curl -sf "$SERVAL_URL/ping" >/dev/null; do
  if ! kill -0 $server 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    echo "error: Serval did not start (its messages are above)" >&2
    exit 1
  fi
  sleep 0.1
done

if "$serval" endpoints describe iris >/dev/null 2>&1; then
  echo "== Endpoint iris exists from an earlier run (restored from $data)"
else
  echo "== Deploying the model as endpoint iris"
  "$serval" deploy "$model" --name iris --max-batch-size 32 --max-delay-ms 2
fi

# The commands shown below, each exactly as it runs; they work as typed from any folder.
cli=$(printf '%q' "$(cd "$(dirname "$serval")" && pwd)/$(basename "$serval")")
server_option=""
[ "$port" = 8080 ] || server_option=" --server $SERVAL_URL"
invoke="$cli invoke iris$server_option --body '{\"instances\": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'"
sagemaker="curl -s $SERVAL_URL/endpoints/iris/invocations -H 'Content-Type: text/csv' --data-binary \$'5.1,3.5,1.4,0.2\\n6.7,3.0,5.2,2.3\\n'"
oip="curl -s $SERVAL_URL/v2/models/iris/infer -H 'Content-Type: application/json' -d '{\"inputs\": [{\"name\": \"input-0\", \"shape\": [2, 4], \"datatype\": \"FP32\", \"data\": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}], \"outputs\": [{\"name\": \"predict\"}]}'"
show() {
  local output
  echo "\$ $1"
  output=$(eval "$1")
  printf '%s\n' "$output"
}
echo "== Predictions: with Serval's CLI, SageMaker's InvokeEndpoint, and the Open Inference Protocol (KServe/Triton clients)"
show "$invoke"
show "$sagemaker"
show "$oip"

echo "== More to try from another terminal"
echo "\$ curl -s $SERVAL_URL/endpoints/iris/invocations -H 'Content-Type: application/json' -d '[[5.9, 3.0, 5.1, 1.8]]'"
echo "\$ $cli endpoints describe iris$server_option"
echo
echo "Serval keeps serving at $SERVAL_URL (gRPC on port $grpc_port, the S3 API on port $s3_port). Ctrl-C stops it."
wait $server
