#!/usr/bin/env bash
# redisbench.sh measures the proxy's rate-limit group kept in Redis
# (-group-redis), the figures of docs/benchmarks.md's "Rate-limit group in
# Redis" section: three proxy processes sharing one -group-rate, fairness
# by connection across processes, a busy process beside idle ones, the
# cost in Redis commands and CPU, and a Redis killed and restarted in the
# middle of a run. It starts its own redis-server (a free loopback port,
# persistence off) and proxies, each with its embedded upstream, and
# stops them all by PID at exit. Needs redis-server, redis-cli, curl, jq
# and python3. Run from anywhere:
#
#	bash examples/proxy/redisbench.sh [scenario...]
#
# with scenarios among share fair idle cost fault (default: all).
set -euo pipefail
cd "$(dirname "$0")/../.."

RATE=3MiB        # the group's budget, bytes per second each way
RATE_B=3145728   # the same in bytes
TICK_HZ=10       # the proxy's -group-rate ticks per second

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go build -o "$tmp/proxy" ./examples/proxy

RPORT=$(freeport)
REDIS=redis://127.0.0.1:$RPORT
start_redis() {
	redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >>"$tmp/redis.log" 2>&1 &
	RPID=$!
	pids+=("$RPID")
	for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && return; sleep 0.05; done
	echo "redis-server did not start" >&2; exit 1
}
start_redis

# start_proxy NAME GROUP [flags...]: a proxy with its embedded upstream,
# sharing GROUP; sets PORT_NAME and STATS_NAME.
start_proxy() {
	local name=$1 group=$2; shift 2
	local port stats
	port=$(freeport); stats=$(freeport)
	"$tmp/proxy" -listen "127.0.0.1:$port" -stats "127.0.0.1:$stats" \
		-group-rate "$RATE" -group-redis "$REDIS" -group-name "$group" "$@" \
		>"$tmp/$name.out" 2>"$tmp/$name.err" &
	pids+=($!)
	eval "PORT_$name=$port STATS_$name=$stats PID_$name=$!"
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$stats/" >/dev/null && return; sleep 0.05; done
	echo "proxy $name did not start" >&2; cat "$tmp/$name.err" >&2; exit 1
}

stats() { curl -fs "http://127.0.0.1:$1/debug/vars"; }

# fetch PORT SIZE OUT: downloads SIZE through the proxy on PORT in the
# background, writing "bytes seconds sha256" to OUT; wait_fetches waits
# for every fetch.
fpids=()
fetch() {
	( curl -fs "http://127.0.0.1:$1/bytes/$2" -o "$3.body" -w '%{size_download} %{time_total}' >"$3.w"
	  echo "$(cat "$3.w") $(sha256sum <"$3.body" | cut -c1-64)" >"$3"; rm -f "$3.body" ) &
	fpids+=($!)
}
wait_fetches() { for p in "${fpids[@]}"; do wait "$p"; done; fpids=(); }

# want SIZE_BYTES: the sha256 of the embedded upstream's pattern.
want() { python3 -c "import hashlib,sys; n=int(sys.argv[1]); b=bytes(i%251 for i in range(251))*(n//251+1); print(hashlib.sha256(b[:n]).hexdigest())" "$1"; }

share() {
	echo "== share: three proxies, one download each, sharing $RATE"
	start_proxy A share; start_proxy B share; start_proxy C share
	sleep 0.5
	local t0 t1
	t0=$(date +%s.%N)
	fetch "$PORT_A" 10MiB "$tmp/a"; fetch "$PORT_B" 10MiB "$tmp/b"; fetch "$PORT_C" 10MiB "$tmp/c"; wait_fetches
	t1=$(date +%s.%N)
	python3 - "$tmp/a" "$tmp/b" "$tmp/c" "$t0" "$t1" "$RATE_B" <<'EOF'
import sys
rows=[open(f).read().split() for f in sys.argv[1:4]]
t0,t1,rate=float(sys.argv[4]),float(sys.argv[5]),int(sys.argv[6])
rates=[int(r[0])/float(r[1]) for r in rows]
total=sum(int(r[0]) for r in rows)/max(float(r[1]) for r in rows)
print("per process: " + ", ".join("%.0f B/s" % r for r in rates))
print("combined: %.0f B/s = %.2f%% of the budget; spread of the shares %.1f%%" % (total, 100*total/rate, 100*(max(rates)-min(rates))/(sum(rates)/3)))
EOF
	stop_proxies A B C
}

stop_proxies() {
	for n in "$@"; do
		local pid; pid=$(eval echo "\$PID_$n")
		kill "$pid"; wait "$pid" 2>/dev/null || true
		pids=("${pids[@]/$pid}")
	done
}

fair() {
	echo "== fair: 1 client on A, 9 on B, sharing $RATE (each should get 300 KiB/s), over 8 s after 2 s"
	start_proxy A fair; start_proxy B fair
	sleep 0.5
	local spids=() i
	curl -fs "http://127.0.0.1:$PORT_A/bytes/1GiB" -o "$tmp/s0" & spids+=($!)
	for i in 1 2 3 4 5 6 7 8 9; do curl -fs "http://127.0.0.1:$PORT_B/bytes/1GiB" -o "$tmp/s$i" & spids+=($!); done
	sleep 2
	local a=() b=() t0 t1
	t0=$(date +%s.%N); for i in 0 1 2 3 4 5 6 7 8 9; do a+=($(stat -c %s "$tmp/s$i")); done
	sleep 8
	t1=$(date +%s.%N); for i in 0 1 2 3 4 5 6 7 8 9; do b+=($(stat -c %s "$tmp/s$i")); done
	kill "${spids[@]}"; wait "${spids[@]}" 2>/dev/null || true
	python3 -c "
import sys
a=[int(x) for x in sys.argv[1].split()]; b=[int(x) for x in sys.argv[2].split()]
secs=float(sys.argv[4])-float(sys.argv[3]); want=300*1024
rates=[(y-x)/secs for x,y in zip(a,b)]
print(\"A's client: %.0f B/s; B's: %s\" % (rates[0], ', '.join('%.0f' % r for r in rates[1:])))
print('combined %.0f B/s; worst client off 300 KiB/s by %.1f%%' % (sum(rates), max(100*abs(r-want)/want for r in rates)))
" "${a[*]}" "${b[*]}" "$t0" "$t1"
	for n in A B; do
		echo "stats $n: $(stats "$(eval echo "\$STATS_$n")" | jq -c '.group_store | {leases, top_ups, give_backs, redis_calls}')"
	done
	stop_proxies A B
}

idle() {
	echo "== idle: one busy proxy, two idle ones, sharing $RATE"
	start_proxy A idle; start_proxy B idle; start_proxy C idle
	sleep 0.5
	fetch "$PORT_A" 15MiB "$tmp/i"; wait_fetches
	python3 - "$tmp/i" "$RATE_B" <<'EOF'
import sys
r=open(sys.argv[1]).read().split(); rate=int(sys.argv[2])
got=int(r[0])/float(r[1])
print("busy proxy: %.0f B/s = %.1f%% of the budget" % (got, 100*got/rate))
EOF
	stop_proxies A B C
}

cost() {
	echo "== cost: Redis commands per process, and CPU per byte against the in-process group"
	start_proxy A cost; start_proxy B cost; start_proxy C cost
	local c0 c1 t0 t1 calls=0
	# Commands the proxies send: the script runs (EVALSHA, EVAL once
	# after a restart). INFO's total counts the commands the script calls
	# in Redis too, which never cross the network.
	scripts() { redis-cli -p "$RPORT" info commandstats | awk -F'[=,:]' '/^cmdstat_eval(sha)?:/{n+=$3} END{print n+0}'; }
	c0=$(scripts)
	t0=$(date +%s.%N)
	for p in "$PORT_A" "$PORT_B" "$PORT_C"; do for i in 1 2 3 4 5 6 7 8 9 10; do fetch "$p" 1MiB "$tmp/c$p.$i"; done; done
	wait_fetches
	t1=$(date +%s.%N)
	c1=$(scripts)
	python3 -c "import sys; c=(int(sys.argv[2])-int(sys.argv[1]))/(float(sys.argv[4])-float(sys.argv[3]))/3; print('with 10 connections each: %.1f Redis commands/s per process, %.2f x the %d ticks/s' % (c, c/int(sys.argv[5]), int(sys.argv[5])))" "$c0" "$c1" "$t0" "$t1" "$TICK_HZ"
	for n in A B C; do
		echo "stats $n: $(stats "$(eval echo "\$STATS_$n")" | jq -c '{uptime_seconds, calls: .group_store.redis_calls, per_second: (.group_store.redis_calls / .uptime_seconds)}')"
	done
	stop_proxies A B C
	# CPU per byte on an unlimited stream: a group far above what the
	# machine can move, in the process and in Redis, 2 GiB each, twice.
	local lport rport
	for round in 1 2; do
		for mode in local redis; do
			lport=$(freeport)
			if [ $mode = local ]; then
				"$tmp/proxy" -listen "127.0.0.1:$lport" -group-rate 100GiB >/dev/null 2>&1 &
			else
				"$tmp/proxy" -listen "127.0.0.1:$lport" -group-rate 100GiB -group-redis "$REDIS" -group-name cpu >/dev/null 2>&1 &
			fi
			local pid=$!
			pids+=("$pid")
			for _ in $(seq 100); do curl -fs "http://127.0.0.1:$lport/" >/dev/null && break; sleep 0.05; done
			local j0 j1
			j0=$(awk '{print $14+$15}' "/proc/$pid/stat")
			curl -fs "http://127.0.0.1:$lport/bytes/2GiB" -o /dev/null
			j1=$(awk '{print $14+$15}' "/proc/$pid/stat")
			echo "round $round, $mode group: $(python3 -c "import os,sys; print('%.3f CPU s per GiB' % ((int(sys.argv[2])-int(sys.argv[1]))/os.sysconf('SC_CLK_TCK')/2))" "$j0" "$j1")"
			kill "$pid"; wait "$pid" 2>/dev/null || true
		done
	done
}

fault() {
	echo "== fault: Redis killed 3 s into the three-proxy run, started again 2 s later"
	start_proxy A fault; start_proxy B fault; start_proxy C fault
	sleep 0.5
	local size=$((10 * 1048576)) s0 s1 t0 t1
	fetch "$PORT_A" 10MiB "$tmp/x1"; fetch "$PORT_B" 10MiB "$tmp/x2"; fetch "$PORT_C" 10MiB "$tmp/x3"
	sleep 3
	kill -9 "$RPID"; wait "$RPID" 2>/dev/null || true
	pids=("${pids[@]/$RPID}")
	s0=0; for s in "$STATS_A" "$STATS_B" "$STATS_C"; do s0=$((s0 + $(stats "$s" | jq .bytes_target_to_client))); done
	t0=$(date +%s.%N)
	sleep 2
	s1=0; for s in "$STATS_A" "$STATS_B" "$STATS_C"; do s1=$((s1 + $(stats "$s" | jq .bytes_target_to_client))); done
	t1=$(date +%s.%N)
	start_redis
	wait_fetches
	local w; w=$(want $size)
	for f in x1 x2 x3; do
		read -r n secs h <"$tmp/$f"
		[ "$h" = "$w" ] && ok=byte-exact || ok="WRONG sha256 $h"
		echo "download $f: $n bytes in $secs s, $ok"
	done
	python3 -c "import sys; r=(int(sys.argv[2])-int(sys.argv[1]))/(float(sys.argv[4])-float(sys.argv[3])); print('combined during the outage: %.0f B/s = %.1f%% of the budget (Local: each its last share)' % (r, 100*r/int(sys.argv[5])))" "$s0" "$s1" "$t0" "$t1" "$RATE_B"
	for n in A B C; do
		echo "stats $n: $(stats "$(eval echo "\$STATS_$n")" | jq -c '.group_store | {shared, outages, recoveries, errors, leases, local_leases, last_error}')"
	done
	stop_proxies A B C
}

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(share fair idle cost fault)
for s in "${scenarios[@]}"; do "$s"; done
