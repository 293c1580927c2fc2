#!/usr/bin/env bash
# Runs every test of Serval: the Python worker's (pytest) and Serval's own (swift test).
# Prepares what the tests need on first use: a Python venv with the runtime and test packages in .build/.
# Ends with one line "N passed, N failed" and a non-zero status if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

venv=.build/test-venv
python=${PYTHON:-python3}
stamp="$venv/.requirements-$(cat python/requirements-runtime.txt python/requirements-test.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "== Preparing the test Python environment ($venv)"
  rm -rf "$venv"
  mkdir -p .build
  "$python" -m venv "$venv" || { echo "error: '$python -m venv' failed; install Python 3.9+ with venv"; exit 1; }
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -r python/requirements-runtime.txt -r python/requirements-test.txt || { echo "error: pip install failed"; exit 1; }
  touch "$stamp"
fi

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== Python worker tests (pytest)"
(cd python && "$root/$venv/bin/python" -m pytest -q -p no:cacheprovider tests) 2>&1 | tee "$log"
p=$(grep -Eo '[0-9]+ passed' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
f=$(grep -Eo '[0-9]+ (failed|errors?)' "$log" | awk '{ sum += $1 } END { print sum + 0 }')
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
if ! grep -Eq '[0-9]+ passed' "$log"; then failed=$((failed + 1)); fi

echo "== Swift tests (swift test)"
export SERVAL_TEST_PYTHON="$root/$venv/bin/python"
export SERVAL_TEST_PYTHON_CACHE="$root/.build/test-python-cache"
# Seconds each seeded random (fuzz) test runs after its fixed seeds; raise it for a longer search.
export SERVAL_FUZZ_SECONDS="${SERVAL_FUZZ_SECONDS:-2}"
build_status=0
swift build --build-tests >"$log" 2>&1 || build_status=$?
grep -Ev '^\[[0-9]+/[0-9]+\]|unhandled; explicitly declare' "$log"
if [ "$build_status" != 0 ]; then echo "error: swift build failed"; failed=$((failed + 1)); fi
swift test --skip-build 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# Swift Testing's own total ("Test run with N tests ...") is exact; counting per-test lines is not, because
# tests running in parallel can interleave their lines.
f=$(grep -Eo '✘ Test .{0,400}failed after' "$log" | grep -vc 'Test run with' || true)
total=$(grep -Eo 'Test run with [0-9]+ tests?' "$log" | tail -1 | grep -Eo '[0-9]+' || true)
if [ -n "$total" ]; then p=$((total - f)); else p=$(grep -Ec '^. Test .*passed after' "$log"); fi
passed=$((passed + p)); failed=$((failed + f))
if [ "$status" != 0 ] && [ "$f" = 0 ]; then failed=$((failed + 1)); fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
