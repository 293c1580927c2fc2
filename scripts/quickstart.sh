#!/usr/bin/env bash
# Builds Serval, trains a small scikit-learn model, starts Serval, deploys the model and prints a prediction.
# Serval keeps serving afterwards; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8080}
grpc_port=${GRPC_PORT:-8081}
data=${DATA_DIR:-.serval}

echo "== Building Serval (release; the first build takes several minutes)"
swift build -c release --product serval 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
serval=$(swift build -c release --show-bin-path)/serval

echo "== Training the example model (scikit-learn, in .build/quickstart-venv)"
if [ ! -x .build/quickstart-venv/bin/python ]; then
  python3 -m venv .build/quickstart-venv
  .build/quickstart-venv/bin/python -m pip install -q --disable-pip-version-check -r python/requirements-runtime.txt
fi
.build/quickstart-venv/bin/python examples/quickstart/train.py .build/quickstart-model

echo "== Starting Serval on http://127.0.0.1:$port (data in $data)"
"$serval" serve --port "$port" --grpc-port "$grpc_port" --data-dir "$data" --python .build/quickstart-venv/bin/python &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ping" >/dev/null && break; sleep 0.1; done

export SERVAL_URL="http://127.0.0.1:$port"
if "$serval" endpoints describe iris >/dev/null 2>&1; then
  echo "== Endpoint iris exists from an earlier run (restored from $data)"
else
  "$serval" deploy .build/quickstart-model --name iris --max-batch-size 32 --max-delay-ms 2
fi

echo "== A prediction: serval invoke iris --body '{\"instances\": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'"
"$serval" invoke iris --body '{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'
echo "== The same model over the Open Inference Protocol (KServe/Triton clients; gRPC on port $grpc_port)"
curl -s "http://127.0.0.1:$port/v2/models/iris/infer" -H 'Content-Type: application/json' \
  -d '{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}], "outputs": [{"name": "predict"}]}'
echo

echo
echo "Serval keeps serving at $SERVAL_URL (curl $SERVAL_URL/endpoints/iris/invocations -H 'Content-Type: application/json' -d '[[5.1,3.5,1.4,0.2]]'). Ctrl-C stops it."
wait $server
