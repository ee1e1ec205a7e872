#!/bin/bash
# run-echo.sh: compare WebSocket echo servers by server CPU time per message.
#
# For every scenario, ROUNDS rounds; in each round every server is started
# fresh (pinned to SERVER_CPU), measured by loadgen (pinned to LOAD_CPU) and
# stopped, so the servers interleave. Prints one table per scenario: medians
# over the rounds, and "x tcp", the median of each round's ratio to tcp-echo's
# CPU time per message (per handshake, or bytes per idle connection). TLS and
# permessage-deflate scenarios run duplex and node only (tcp-echo and lws-echo
# speak neither); with compression the table adds the compression ratio. When a
# TLS scenario ran with its plaintext twin (tls512 and echo512, tls512x16 and
# echo512x16, hstls and hs), a last table compares them per server and round; and
# idle-deflate is set against idle (the codec's share of a connection's memory).
#
#   make bench bench-peers && bench/load/run-echo.sh
#
# Environment (defaults in brackets):
#   BUILD [build]          where make put bench/loadgen, bench/tcp-echo, bin/echo-server
#   ROUNDS [3] DURATION [5] WARMUP [1]   rounds, and seconds per measurement
#   SERVERS ["tcp duplex lws node"]      any subset, in this order; "base" is the
#                          echo-server of BASE_BUILD (another checkout's build: before and
#                          after a change, in one interleaved run)
#   BASE_BUILD [unset]     where the "base" server's bin/echo-server is
#   SCENARIOS ["echo20 echo512 tls512 echo16k echo20x16 echo512x16 tls512x16
#              echo512c1000 echo1m deflate512 deflate16k idle idle-deflate hs hstls"]
#   IDLE_CONNS [10000]     connections of the idle scenario
#   IDLE_DEFLATE_CONNS [1000]  connections of idle-deflate
#   HS_CONNS [20]          concurrent handshakes of the hs and hstls scenarios
#   SERVER_CPU [0] LOAD_CPU [1]          taskset CPUs
#   OUT [/tmp/run-echo.PID.txt]          every loadgen result line, with round/scenario/server
# Exit status: 0 when every run worked, 1 otherwise (failed runs show as ERR).
set -u
cd "$(dirname "$0")/../.." || exit 1

BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
SERVERS=${SERVERS:-"tcp duplex lws node"}
SCENARIOS=${SCENARIOS:-"echo20 echo512 tls512 echo16k echo20x16 echo512x16 tls512x16 echo512c1000 echo1m deflate512 deflate16k idle idle-deflate hs hstls"}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_DEFLATE_CONNS=${IDLE_DEFLATE_CONNS:-1000}
HS_CONNS=${HS_CONNS:-20}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
TMP=$(mktemp -d)
OUT=${OUT:-${TMPDIR:-/tmp}/run-echo.$$.txt}
LOADGEN=$BUILD/bench/loadgen
SPID=""
failures=0
starts=0

cleanup() {
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "run-echo: $*" >&2
    exit 1
}

scenario_args() {
    case $1 in
    echo20) echo "--mode echo --conns 100 --inflight 1 --size 20" ;;
    echo512) echo "--mode echo --conns 100 --inflight 1 --size 512" ;;
    echo16k) echo "--mode echo --conns 100 --inflight 1 --size 16384" ;;
    echo20x16) echo "--mode echo --conns 100 --inflight 16 --size 20" ;;
    echo512x16) echo "--mode echo --conns 100 --inflight 16 --size 512" ;;
    echo512c1000) echo "--mode echo --conns 1000 --inflight 1 --size 512" ;;
    echo1m) echo "--mode echo --conns 10 --inflight 1 --size 1048576" ;;
    idle) echo "--mode idle --conns $IDLE_CONNS" ;;
    hs) echo "--mode handshake --conns $HS_CONNS" ;;
    tls512) echo "--mode echo --conns 100 --inflight 1 --size 512 --tls" ;;
    tls512x16) echo "--mode echo --conns 100 --inflight 16 --size 512 --tls" ;;
    hstls) echo "--mode handshake --conns $HS_CONNS --tls" ;;
    deflate512) echo "--mode echo --conns 100 --inflight 1 --size 512 --deflate --payload json" ;;
    deflate16k) echo "--mode echo --conns 100 --inflight 1 --size 16384 --deflate --payload json" ;;
    idle-deflate) echo "--mode idle --conns $IDLE_DEFLATE_CONNS --size 512 --deflate --payload json" ;;
    *) return 1 ;;
    esac
}

# What scenario $1 needs of the server: "tls", "deflate", both, or nothing.
scenario_needs() {
    local args
    args=" $(scenario_args "$1") "
    case $args in *" --tls "*) printf 'tls ' ;; esac
    case $args in *" --deflate "*) printf 'deflate' ;; esac
}

# The command line of server $1 for scenario $2.
server_cmd() {
    local needs extra=""
    needs=$(scenario_needs "${2:-}")
    case $needs in *tls*) extra="--cert $CERTS/server.pem --key $CERTS/server.key" ;; esac
    case $1 in
    tcp) echo "$BUILD/bench/tcp-echo" ;;
    duplex) echo "$BUILD/bin/echo-server --host 127.0.0.1 $extra" ;; # accepts deflate by default
    base) echo "${BASE_BUILD:-}/bin/echo-server --host 127.0.0.1 $extra" ;;
    lws) echo "$BUILD/bench/lws-echo" ;;
    node)
        case $needs in *deflate*) extra="$extra --deflate" ;; esac
        echo "node bench/load/ws-echo.js $extra"
        ;;
    *) return 1 ;;
    esac
}

# Whether server $1 takes part in scenario $2 (tcp-echo and lws-echo: plaintext,
# uncompressed only).
server_fits() {
    case $1 in
    tcp | lws) [ -z "$(scenario_needs "$2")" ] ;;
    *) return 0 ;;
    esac
}

# Why a server cannot run here, or nothing.
server_missing() {
    case $1 in
    tcp) [ -x "$BUILD/bench/tcp-echo" ] || echo "$BUILD/bench/tcp-echo not built (make bench)" ;;
    duplex) [ -x "$BUILD/bin/echo-server" ] || echo "$BUILD/bin/echo-server does not exist yet" ;;
    base) [ -x "${BASE_BUILD:-/nonexistent}/bin/echo-server" ] ||
        echo "BASE_BUILD/bin/echo-server not found (BASE_BUILD=${BASE_BUILD:-unset})" ;;
    lws) [ -x "$BUILD/bench/lws-echo" ] || echo "$BUILD/bench/lws-echo not built (make bench-peers)" ;;
    node)
        if ! command -v node >/dev/null; then
            echo "node not installed"
        elif [ ! -d node_modules/ws ]; then
            echo "node_modules/ws missing (npm install --no-audit --no-fund)"
        fi
        ;;
    esac
}

if command -v taskset >/dev/null; then
    pin_server=(taskset -c "$SERVER_CPU")
    pin_load=(taskset -c "$LOAD_CPU")
else
    echo "note: no taskset: nothing is pinned"
    pin_server=()
    pin_load=()
fi

# Start server $1 for scenario $2 on a free port: sets SPID and SPORT.
start_server() {
    starts=$((starts + 1))
    local log=$TMP/server-$starts-$1.log # a new file: never an old run's port
    # shellcheck disable=SC2046 # the command is words on purpose
    "${pin_server[@]}" $(server_cmd "$1" "$2") --port 0 >"$log" 2>&1 &
    SPID=$!
    for _ in $(seq 100); do
        SPORT=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$log" 2>/dev/null | head -n 1)
        [ -n "$SPORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    echo "run-echo: $1 did not start listening:" >&2
    sed 's/^/    /' "$log" >&2
    stop_server
    return 1
}

stop_server() {
    [ -n "$SPID" ] || return 0
    kill "$SPID" 2>/dev/null
    for _ in $(seq 30); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=""
}

# One measurement: scenario $1, server $2, round $3. Appends to $OUT.
run_one() {
    local scen=$1 srv=$2 round=$3 raw="" line limit
    [ "$srv" = tcp ] && raw=--raw
    if ! start_server "$srv" "$scen"; then
        echo "round=$round scenario=$scen server=$srv error=start" >>"$OUT"
        failures=$((failures + 1))
        return
    fi
    limit=$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN { print int(d + w) + 60 }')
    # shellcheck disable=SC2046
    line=$(timeout "$limit" "${pin_load[@]}" "$LOADGEN" --url "ws://127.0.0.1:$SPORT/" $raw \
        $(scenario_args "$scen") --duration "$DURATION" --warmup "$WARMUP" --server-pid "$SPID" \
        2>"$TMP/loadgen.err")
    local rc=$?
    stop_server
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        echo "run-echo: $scen/$srv round $round failed (exit $rc): $(tail -n 3 "$TMP/loadgen.err")" >&2
        echo "round=$round scenario=$scen server=$srv error=exit$rc" >>"$OUT"
        failures=$((failures + 1))
        return
    fi
    echo "round=$round scenario=$scen server=$srv $line" >>"$OUT"
}

# awk functions both tables use: the median of a space-separated list, and a
# printf that shows "-" for a missing value.
AWK_LIB='
    function median(list,    n, a, i, j, t) {
        n = split(list, a, " ")
        if (n == 0) return ""
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function fmt(v, f) { return v == "" ? "-" : sprintf(f, v) }
'

# The table of scenario $1 from $OUT: medians over rounds, ratios to tcp per round.
table() {
    awk -v scen="$1" -v servers="$active" '
    '"$AWK_LIB"'
    {
        delete kv
        for (i = 1; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
        if (kv["scenario"] != scen) next
        s = kv["server"]; r = kv["round"]
        if ("error" in kv) { err[s] = 1; next }
        mode = kv["mode"]
        if (mode == "echo") { rate = kv["msgs_per_s"]; cpu = kv["server_cpu_us_per_msg"] }
        else if (mode == "handshake") { rate = kv["handshakes_per_s"]; cpu = kv["server_cpu_us_per_handshake"] }
        else { rate = ""; cpu = kv["bytes_per_conn"] }
        if (rate != "") R[s] = R[s] " " rate
        if (mode != "idle") { P50[s] = P50[s] " " kv["p50_us"]; P99[s] = P99[s] " " kv["p99_us"] }
        C[s] = C[s] " " cpu
        M[s] = M[s] " " (mode == "idle" ? kv["rss_after_kb"] : kv["server_rss_kb"])
        if (mode != "idle") PCT[s] = PCT[s] " " kv["server_cpu_pct"]
        if (kv["deflate"] == "on") {
            deflate = 1
            if (kv["ratio"] != "NA") Z[s] = Z[s] " " kv["ratio"]
            if (kv["ratio_rx"] != "NA") ZR[s] = ZR[s] " " kv["ratio_rx"]
        }
        cpu_of[s, r] = cpu; rounds[r] = 1
    }
    END {
        extra = deflate ? sprintf(" %7s %9s", "ratio", "srv ratio") : ""
        if (mode == "idle")
            printf "%-13s %-7s %10s %10s %10s %10s %9s %10s %6s%s\n", scen, "server", "-", "-", "-", "bytes/conn", "x tcp", "rss KB", "-", extra
        else
            printf "%-13s %-7s %10s %10s %10s %10s %9s %10s %6s%s\n", scen, "server", (mode == "handshake" ? "hs/s" : "msgs/s"),
                "p50 us", "p99 us", (mode == "handshake" ? "cpu us/hs" : "cpu us/msg"), "x tcp", "rss KB", "cpu %", extra
        n = split(servers, list, " ")
        for (k = 1; k <= n; k++) {
            s = list[k]
            ratios = ""
            for (r in rounds)
                if (((s, r) in cpu_of) && ((("tcp", r) in cpu_of)) && cpu_of["tcp", r] > 0)
                    ratios = ratios " " cpu_of[s, r] / cpu_of["tcp", r]
            if (C[s] == "" && !(s in err)) continue
            extra = deflate ? sprintf(" %7s %9s", fmt(median(Z[s]), "%.3f"), fmt(median(ZR[s]), "%.3f")) : ""
            printf "%-13s %-7s %10s %10s %10s %10s %9s %10s %6s%s%s\n", "", s, fmt(median(R[s]), "%.0f"),
                fmt(median(P50[s]), "%.1f"), fmt(median(P99[s]), "%.1f"), fmt(median(C[s]), mode == "idle" ? "%.0f" : "%.3f"),
                fmt(median(ratios), "%.2f"), fmt(median(M[s]), "%.0f"), fmt(median(PCT[s]), "%.0f"), extra,
                (s in err ? "  ERR in some round" : "")
        }
    }' "$OUT"
}

# Scenario $2 against its plaintext (or uncompressed) twin $1, per server: the
# medians over rounds of each round's ratio, for the rate and the CPU cost
# (idle: bytes per connection, and their difference).
compare() {
    awk -v base="$1" -v other="$2" -v servers="$active" '
    '"$AWK_LIB"'
    {
        delete kv
        for (i = 1; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
        sc = kv["scenario"]
        if ((sc != base && sc != other) || ("error" in kv)) next
        s = kv["server"]; r = kv["round"]; mode = kv["mode"]
        if (mode == "echo") { rate[sc, s, r] = kv["msgs_per_s"]; cpu[sc, s, r] = kv["server_cpu_us_per_msg"] }
        else if (mode == "handshake") { rate[sc, s, r] = kv["handshakes_per_s"]; cpu[sc, s, r] = kv["server_cpu_us_per_handshake"] }
        else cpu[sc, s, r] = kv["bytes_per_conn"]
        rounds[r] = 1
    }
    END {
        if (mode == "idle")
            printf "%-26s %-7s %12s %12s %12s\n", other " vs " base, "server", "bytes/conn", base, "difference"
        else
            printf "%-26s %-7s %9s %9s %11s %11s %9s\n", other " vs " base, "server", "rate", "x rate", "cpu us", "cpu us " base, "x cpu"
        n = split(servers, list, " ")
        for (k = 1; k <= n; k++) {
            s = list[k]; xr = ""; xc = ""; ro = ""; co = ""; cb = ""; d = ""
            for (r in rounds) {
                if (!(((other, s, r) in cpu) && ((base, s, r) in cpu))) continue
                co = co " " cpu[other, s, r]; cb = cb " " cpu[base, s, r]
                d = d " " (cpu[other, s, r] - cpu[base, s, r])
                if (mode == "idle") continue
                ro = ro " " rate[other, s, r]
                if (rate[base, s, r] > 0) xr = xr " " rate[other, s, r] / rate[base, s, r]
                if (cpu[base, s, r] > 0) xc = xc " " cpu[other, s, r] / cpu[base, s, r]
            }
            if (co == "") continue
            if (mode == "idle")
                printf "%-26s %-7s %12s %12s %12s\n", "", s, fmt(median(co), "%.0f"), fmt(median(cb), "%.0f"), fmt(median(d), "%.0f")
            else
                printf "%-26s %-7s %9s %9s %11s %11s %9s\n", "", s, fmt(median(ro), "%.0f"), fmt(median(xr), "%.2f"),
                    fmt(median(co), "%.3f"), fmt(median(cb), "%.3f"), fmt(median(xc), "%.2f")
        }
    }' "$OUT"
}

[ -x "$LOADGEN" ] || die "$LOADGEN not built (make bench)"
for s in $SCENARIOS; do
    scenario_args "$s" >/dev/null || die "unknown scenario '$s'"
done
active=""
for srv in $SERVERS; do
    server_cmd "$srv" >/dev/null || die "unknown server '$srv'"
    why=$(server_missing "$srv")
    if [ -n "$why" ]; then
        echo "note: skipping $srv: $why"
    else
        active="$active $srv"
    fi
done
[ -n "$active" ] || die "no server to run"
case " $active " in *" tcp "*) ;; *) echo "note: no tcp-echo, so no ratios" ;; esac
: >"$OUT"

CERTS=$TMP/certs
for s in $SCENARIOS; do
    case $(scenario_needs "$s") in
    *tls*)
        sh tests/certs/make-certs.sh "$CERTS" >/dev/null || die "tests/certs/make-certs.sh failed"
        break
        ;;
    esac
done

echo "# $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -r)"
echo "# servers pinned to CPU $SERVER_CPU, loadgen to CPU $LOAD_CPU; $ROUNDS rounds of ${WARMUP}s warm-up + ${DURATION}s"
echo "# medians over rounds; x tcp = median of the per-round ratio to tcp-echo (raw TCP, same load)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on these CPUs skews msgs/s more than cpu us/msg)"
for scen in $SCENARIOS; do
    for round in $(seq "$ROUNDS"); do
        for srv in $active; do
            server_fits "$srv" "$scen" && run_one "$scen" "$srv" "$round"
        done
    done
    echo
    table "$scen"
done
for pair in "echo512 tls512" "echo512x16 tls512x16" "hs hstls" "idle idle-deflate"; do
    # shellcheck disable=SC2086 # two words on purpose
    set -- $pair
    case " $SCENARIOS " in *" $1 "*) ;; *) continue ;; esac
    case " $SCENARIOS " in *" $2 "*) ;; *) continue ;; esac
    echo
    compare "$1" "$2"
done
echo
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# raw results: $OUT"
[ "$failures" -eq 0 ] || {
    echo "run-echo: $failures run(s) failed" >&2
    exit 1
}
