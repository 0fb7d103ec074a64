#!/usr/bin/env bash
# echo.sh compares bev's examples/echo with the plain-Go echo server
# (bench/rawecho: a goroutine per connection, io.CopyBuffer with 32 KiB)
# and, when libevent-dev is installed, a libevent echo server
# (bench/levecho), all driven by bench/loadgen, which checks every echoed
# byte.
#
# Load (-mode load): four scenarios, each a -warmup then a -duration window:
#   stream 1x64KiB    loadgen -mode stream   -conns 1  -size 65536
#   stream 50x4KiB    loadgen -mode stream   -conns 50 -size 4096
#   pingpong 1x64B    loadgen -mode pingpong -conns 1  -size 64
#   pingpong 50x64B   loadgen -mode pingpong -conns 50 -size 64
# in -rounds interleaved rounds (the order of the servers rotates per
# round), on a fresh server process per scenario. For each run it reads
# the server's user+system CPU time (/proc/PID/stat) around the load and
# its peak RSS (VmHWM) after it. It prints every run, then per scenario
# the medians with their spread (min-max) and the ratios to rawecho:
# throughput (MiB/s or round trips/s), CPU per MiB echoed or per round
# trip (the server's CPU over the whole load, warm-up included, divided by
# everything echoed), p50/p99 latency, peak RSS.
#
# Idle (-mode idle): per round and server, -conns connections (5000) each
# make one echo of -size bytes (64) and stay open; after -settle seconds
# (2) the server's VmRSS (and RssAnon) above what it had before they
# connected, divided by the connections, is its bytes per idle connection.
#
# -base REF also builds examples/echo as it was at git ref REF (a commit,
# a branch) as the server "base", so a change to bev is measured against
# the build before it in the same rounds: -servers "rawecho base bev".
#
# Everything is on 127.0.0.1, every run is bounded in time, and every
# process is stopped by its PID.
#
#   usage: bash bench/echo.sh [-mode load|idle|both] [-rounds N] [-duration SEC] [-warmup SEC]
#                             [-servers "rawecho bev libevent base"] [-base REF] [-conns N] [-size BYTES] [-settle SEC]
#   needs: go; optional: a C compiler, libevent-dev and pkg-config.
set -euo pipefail
MODE=both ROUNDS=5 DURATION=3 WARMUP=1 SERVER_LIST="" CONNS=5000 SIZE=64 SETTLE=2 BASE_REF=""
usage() {
	echo "usage: $0 [-mode load|idle|both] [-rounds N] [-duration SEC] [-warmup SEC] [-servers LIST] [-base REF] [-conns N] [-size BYTES] [-settle SEC]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || usage
	case $1 in
	-mode) MODE=$2 ;;
	-rounds) ROUNDS=$2 ;;
	-duration) DURATION=$2 ;;
	-warmup) WARMUP=$2 ;;
	-servers) SERVER_LIST=$2 ;;
	-base) BASE_REF=$2 ;;
	-conns) CONNS=$2 ;;
	-size) SIZE=$2 ;;
	-settle) SETTLE=$2 ;;
	*) usage ;;
	esac
	shift 2
done
case $MODE in load | idle | both) ;; *) usage ;; esac
command -v go >/dev/null || { echo "echo.sh: go not found" >&2; exit 2; }
. "$(dirname "$0")/lib.sh"

# Build bev's echo, the baseline, the load and, when possible, levecho.
(cd "$REPO" && go build -o "$TMP/bev" ./examples/echo && go build -o "$TMP/rawecho" ./bench/rawecho &&
	go build -o "$TMP/loadgen" ./bench/loadgen)
SERVERS="rawecho bev"
if command -v cc >/dev/null && pkg-config --exists libevent_core 2>/dev/null; then
	cc -O2 -o "$TMP/libevent" "$BENCH_DIR/levecho/levecho.c" $(pkg-config --cflags --libs libevent_core)
	SERVERS="rawecho bev libevent"
else
	note "libevent echo skipped: no C compiler or libevent-dev (apt-get install -y libevent-dev pkg-config)"
fi
if [ -n "$BASE_REF" ]; then
	build_at "$BASE_REF" ./examples/echo "$TMP/base"
	SERVERS="$SERVERS base"
fi
if [ -n "$SERVER_LIST" ]; then
	for s in $SERVER_LIST; do
		case " $SERVERS " in *" $s "*) ;; *) echo "echo.sh: server $s is not built (built: $SERVERS)" >&2; exit 2 ;; esac
	done
	SERVERS=$SERVER_LIST
fi
TICK_MS=$((1000 / $(getconf CLK_TCK)))
FAILED=0
note "servers: $SERVERS; $ROUNDS interleaved rounds; $(machine)"

# start_server NAME: starts echo server NAME on a free port; sets PORT_NAME
# and PID_NAME.
start_server() {
	local name=$1 port
	port=$(free_port)
	case $name in
	bev) start bev "$TMP/bev" -addr "127.0.0.1:$port" ;;
	base) start base "$TMP/base" -addr "127.0.0.1:$port" ;;
	rawecho) start rawecho "$TMP/rawecho" -addr "127.0.0.1:$port" ;;
	libevent) start libevent "$TMP/libevent" "$port" ;;
	esac
	printf -v "PORT_$name" '%s' "$port"
	wait_port "$port" "$name"
}

# jget FIELD JSON: the value of FIELD in loadgen's one-line JSON.
jget() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2"; }

# rotated ROUND: the servers, rotated by ROUND.
rotated() {
	local r=$1 n i j
	set -- $SERVERS
	n=$#
	for i in $(seq 0 $((n - 1))); do
		j=$(((i + r - 1) % n + 1))
		printf '%s ' "${!j}"
	done
}

SCENARIOS=(stream1x64KiB stream50x4KiB pingpong1x64B pingpong50x64B)
declare -A ARGS=(
	[stream1x64KiB]="-mode stream -conns 1 -size 65536"
	[stream50x4KiB]="-mode stream -conns 50 -size 4096"
	[pingpong1x64B]="-mode pingpong -conns 1 -size 64"
	[pingpong50x64B]="-mode pingpong -conns 50 -size 64"
)

# measure ROUND SCENARIO SERVER: one run on a fresh server; appends to
# RESULTS "round scenario server mib/s rt/s p50us p99us cpu_ms
# cpu_ms_per_mib cpu_us_per_rt vmhwm_kb".
measure() {
	local round=$1 sc=$2 s=$3 pidv portv c0 c1 out hwm line
	start_server "$s"
	pidv=PID_$s portv=PORT_$s
	c0=$(cpu_ticks "${!pidv}")
	if ! out=$(timeout "$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN {printf "%d", w + d + 60}')" "$TMP/loadgen" -addr "127.0.0.1:${!portv}" ${ARGS[$sc]} \
		-duration "${DURATION}s" -warmup "${WARMUP}s"); then
		note "round $round $sc $s: loadgen failed: ${out:-no output}"
		FAILED=1
		stop "$s"
		return
	fi
	c1=$(cpu_ticks "${!pidv}")
	hwm=$(rss_kb "${!pidv}" VmHWM)
	stop "$s"
	line=$(awk -v r="$round" -v sc="$sc" -v s="$s" -v ms="$(((c1 - c0) * TICK_MS))" -v hwm="$hwm" \
		-v mib="$(jget mib_per_sec "$out")" -v rt="$(jget round_trips_per_sec "$out")" \
		-v p50="$(jget p50_us "$out")" -v p99="$(jget p99_us "$out")" \
		-v tb="$(jget total_bytes "$out")" -v trt="$(jget total_round_trips "$out")" 'BEGIN {
		printf "%s %s %s %.1f %.0f %.1f %.1f %d %.3f %.2f %d\n", r, sc, s, mib, rt, p50, p99, ms,
			(tb > 0 ? ms / (tb / 1048576) : 0), (trt > 0 ? ms * 1000 / trt : 0), hwm }')
	echo "$line" >>"$RESULTS"
	echo "$line"
}

# col SCENARIO SERVER COLUMN: that column of every run, one a line.
col() { awk -v sc="$1" -v s="$2" -v c="$3" '$2 == sc && $3 == s {print $c}' "$RESULTS"; }

# stat SCENARIO SERVER COLUMN: "median (min-max)".
stat() {
	local v
	v=$(col "$1" "$2" "$3" | sort -g)
	[ -n "$v" ] || { echo "n/a"; return; }
	printf '%s (%s-%s)' "$(median <<<"$v")" "$(head -1 <<<"$v")" "$(tail -1 <<<"$v")"
}

# ratio SCENARIO SERVER COLUMN: the server's median over rawecho's, and
# the median of the per-round ratios (same round, same machine load).
ratio() {
	local a b per
	case " $SERVERS " in *" rawecho "*) ;; *) echo "n/a"; return ;; esac
	a=$(col "$1" "$2" "$3" | median) b=$(col "$1" rawecho "$3" | median)
	per=$(awk -v sc="$1" -v s="$2" -v c="$3" '$2 == sc && $3 == s {x[$1] = $c} $2 == sc && $3 == "rawecho" {y[$1] = $c}
		END {for (i in x) if (i in y && y[i] > 0) print x[i] / y[i]}' "$RESULTS" | median)
	awk -v a="$a" -v b="$b" -v p="$per" 'BEGIN {if (a != "nan" && b != "nan" && b > 0) printf "%.2fx (per-round %.2fx)", a / b, p; else print "n/a"}'
}

load() {
	RESULTS=$TMP/results
	: >"$RESULTS"
	echo "round scenario server MiB/s rt/s p50us p99us cpu_ms cpu_ms/MiB cpu_us/rt VmHWM_KiB"
	for round in $(seq "$ROUNDS"); do
		for sc in "${SCENARIOS[@]}"; do
			for s in $(rotated "$round"); do measure "$round" "$sc" "$s"; done
		done
	done
	echo
	echo "medians of $ROUNDS rounds (min-max); ratios to rawecho: of the medians, and the median of per-round ratios"
	local sc s
	for sc in "${SCENARIOS[@]}"; do
		echo "$sc"
		for s in $SERVERS; do
			case $sc in
			stream*)
				printf '  %-9s MiB/s %-26s %-28s CPU ms/MiB %-24s %s\n' "$s" "$(stat "$sc" "$s" 4)" "$(ratio "$sc" "$s" 4)" \
					"$(stat "$sc" "$s" 9)" "$(ratio "$sc" "$s" 9)"
				;;
			*)
				printf '  %-9s rt/s %-26s %-28s CPU us/rt %-24s %s\n' "$s" "$(stat "$sc" "$s" 5)" "$(ratio "$sc" "$s" 5)" \
					"$(stat "$sc" "$s" 10)" "$(ratio "$sc" "$s" 10)"
				printf '  %-9s p50 us %s, p99 us %s\n' "" "$(stat "$sc" "$s" 6)" "$(stat "$sc" "$s" 7)"
				;;
			esac
			printf '  %-9s peak RSS KiB %s\n' "" "$(stat "$sc" "$s" 11)"
		done
	done
}

idle() {
	IDLE=$TMP/idle
	: >"$IDLE"
	echo "round server conns RSS_before_KiB RSS_after_KiB bytes/conn anon_bytes/conn"
	local round s pidv portv r0 a0 r1 a1 rc line
	for round in $(seq "$ROUNDS"); do
		for s in $(rotated "$round"); do
			start_server "$s"
			pidv=PID_$s portv=PORT_$s
			r0=$(rss_kb "${!pidv}") a0=$(rss_kb "${!pidv}" RssAnon)
			start loadgen timeout 300 "$TMP/loadgen" -addr "127.0.0.1:${!portv}" -mode idle -conns "$CONNS" \
				-size "$SIZE" -duration "$((SETTLE + 3))s"
			for _ in $(seq 1200); do
				grep -q "loadgen: ready" "$TMP/loadgen.log" 2>/dev/null && break
				kill -0 "$PID_loadgen" 2>/dev/null || break
				sleep 0.1
			done
			if grep -q "loadgen: ready" "$TMP/loadgen.log"; then
				sleep "$SETTLE"
				r1=$(rss_kb "${!pidv}") a1=$(rss_kb "${!pidv}" RssAnon)
			fi
			rc=0
			wait "$PID_loadgen" || rc=$?
			stop loadgen
			stop "$s"
			if [ "$rc" != 0 ] || ! grep -q '"ok":true' "$TMP/loadgen.log"; then
				note "round $round idle $s: loadgen failed (status $rc): $(tail -2 "$TMP/loadgen.log")"
				FAILED=1
				continue
			fi
			line=$(awk -v r="$round" -v s="$s" -v n="$CONNS" -v r0="$r0" -v r1="$r1" -v a0="$a0" -v a1="$a1" \
				'BEGIN {printf "%s %s %d %d %d %.0f %.0f\n", r, s, n, r0, r1, (r1 - r0) * 1024 / n, (a1 - a0) * 1024 / n}')
			echo "$line" >>"$IDLE"
			echo "$line"
		done
	done
	echo
	echo "idle: $CONNS connections after one $SIZE-byte echo; medians of $ROUNDS rounds (min-max)"
	local v
	for s in $SERVERS; do
		v=$(awk -v s="$s" '$2 == s {print $6}' "$IDLE" | sort -g)
		[ -n "$v" ] || { printf '  %-9s n/a\n' "$s"; continue; }
		printf '  %-9s bytes/conn %s (%s-%s), anon bytes/conn %s\n' "$s" "$(median <<<"$v")" "$(head -1 <<<"$v")" \
			"$(tail -1 <<<"$v")" "$(awk -v s="$s" '$2 == s {print $7}' "$IDLE" | median)"
	done
}

case $MODE in
load) load ;;
idle) idle ;;
both) load; echo; idle ;;
esac
exit "$FAILED"
