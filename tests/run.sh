#!/bin/sh
# Run every test binary, replay every fuzz corpus, run the layering check, and
# print the total as the last line: "N passed, M failed".
# Usage: tests/run.sh BUILD_DIR
build=${1:-build}
passed=0
failed=0
failures=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Run one counted suite: its last line must be "<name>: N passed, M failed".
run_counted() {
    name=$1
    shift
    if timeout 900 "$@" >"$log" 2>&1; then rc=0; else rc=$?; fi
    summary=$(tail -n 1 "$log")
    p=$(echo "$summary" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(echo "$summary" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$p" ]; then
        # crashed (sanitizer report, signal, timeout) before its summary
        p=0
        f=1
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # a clean summary but a failing exit (e.g. LeakSanitizer at exit)
    fi
    if [ "$f" -ne 0 ]; then
        cat "$log"
        failures="$failures $name"
    else
        grep -v '^ok ' "$log" || true
    fi
    passed=$((passed + p))
    failed=$((failed + f))
}

for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    run_counted "$(basename "$t")" "$t"
done

# Real peers against our programs (Python's websockets from Debian).
for s in tests/interop/*.py; do
    [ -f "$s" ] || continue
    run_counted "$(basename "$s" .py)" /usr/bin/python3 "$s" "$build"
done

# Real peers from npm (Node's ws; scripts/install-deps.sh installs node_modules/).
# A missing node or ws fails these, it does not skip them.
for s in tests/interop/*.js; do
    [ -f "$s" ] || continue
    run_counted "$(basename "$s" .js)" node "$s" "$build"
done

# Our Autobahn-style conformance suites, raw frames against echo-server and
# echo-client; each file says what it checks in its docstring.
for s in tests/conformance/*_cases.py; do
    [ -f "$s" ] || continue
    run_counted "$(basename "$s" .py)" /usr/bin/python3 "$s" "$build"
done

# Every fuzz corpus and regression input, replayed without libFuzzer.
for r in "$build"/tests/replay_*; do
    [ -x "$r" ] || continue
    target=${r##*/replay_}
    if timeout 600 "$r" "fuzz/corpus/$target" "fuzz/regression/$target" >"$log" 2>&1; then
        tail -n 1 "$log"
        passed=$((passed + 1))
    else
        cat "$log"
        failures="$failures replay_$target"
        failed=$((failed + 1))
    fi
done

# proto and base must not include OS I/O headers.
if sh tests/check_layering.sh >"$log" 2>&1; then
    cat "$log"
    passed=$((passed + 1))
else
    cat "$log"
    failures="$failures layering"
    failed=$((failed + 1))
fi

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
