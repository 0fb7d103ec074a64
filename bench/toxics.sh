#!/usr/bin/env bash
# toxics.sh compares the CPU spent per HTTP request by proxies carrying
# toxiproxy's toxics, all in front of one HTTP server answering 100 bytes
# (nginx when installed, else bench/httpd):
#
#   bev      examples/proxy, its own -listen (no API, no toxic filter)
#   bevapi   examples/proxy -api: a proxy made by -config, with a toxic
#            filter on every connection (its toxic list empty, or the
#            two 0 ms latencies below)
#   toxiproxy  toxiproxy-server v2.5.0, built from the module proxy with
#            this Go, its proxy made by the same -config
#   libevent bench/levproxy, a C relay of le-proxy's shape, when libevent
#            and a C compiler are installed: what the kernel's part of a
#            request costs a relay whose own part is small (no toxics)
#
# Each round runs wrk -t1 -c50 -d3s through each proxy in turn (the
# order rotates per round), first with no toxics, then (after a POST to
# each API) with a 0 ms latency toxic in each direction, and reads the
# proxy process's user+system CPU time from /proc/PID/stat before and
# after (user and system apart: on loopback, a proxy's system time also
# carries the delivery of what it writes to the receiver). It prints
# every round, the medians and the ratios.
#
# Then, through bevapi and toxiproxy in turn, it times curl fetching
# GET /big (10 MiB) with a 1024 KB/s bandwidth toxic downstream: the
# issue's figure is 10 s; with toxiproxy's KB of 1000 bytes (its
# toxics/bandwidth.go: a sleep of len/rate ms per chunk) it is 10.24 s.
#
#   usage: bash bench/toxics.sh [-rounds N] [-duration SEC]
#   needs: go, wrk, curl; optional nginx-light, libevent-dev and pkg-config.
set -euo pipefail
ROUNDS=5 DURATION=3
while [ $# -gt 0 ]; do
	case $1 in
	-rounds) ROUNDS=$2; shift 2 ;;
	-duration) DURATION=$2; shift 2 ;;
	*) echo "usage: $0 [-rounds N] [-duration SEC]" >&2; exit 2 ;;
	esac
done
for tool in go wrk curl; do
	command -v $tool >/dev/null || { echo "toxics.sh: $tool not found" >&2; exit 2; }
done
. "$(dirname "$0")/lib.sh"

(cd "$REPO" && go build -o "$TMP/bev" ./examples/proxy && go build -o "$TMP/httpd" ./bench/httpd)
(cd "$TMP" && GOBIN="$TMP" go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0) ||
	{ echo "toxics.sh: cannot build toxiproxy-server v2.5.0" >&2; exit 2; }
PROXIES="bev bevapi toxiproxy"
if command -v cc >/dev/null && pkg-config --exists libevent_core 2>/dev/null; then
	cc -O2 -o "$TMP/libevent" "$BENCH_DIR/levproxy/levproxy.c" $(pkg-config --cflags --libs libevent_core)
	PROXIES="$PROXIES libevent"
else
	note "libevent relay skipped: no C compiler or libevent-dev (apt-get install -y libevent-dev pkg-config)"
fi
start_origin $((10 << 20))

P_bev=$(free_port); P_bevapi=$(free_port); P_toxiproxy=$(free_port)
A_bevapi=$(free_port); A_toxiproxy=$(free_port); L_bevapi=$(free_port)
mkconfig() { echo "[{\"name\":\"bench\",\"listen\":\"127.0.0.1:$1\",\"upstream\":\"127.0.0.1:$ORIGIN_PORT\",\"enabled\":true}]" >"$TMP/$2.json"; }
mkconfig "$P_bevapi" bevapi
mkconfig "$P_toxiproxy" toxiproxy
start bev "$TMP/bev" -listen "127.0.0.1:$P_bev" -target "127.0.0.1:$ORIGIN_PORT" -log-level WARN
start bevapi "$TMP/bev" -listen "127.0.0.1:$L_bevapi" -target "127.0.0.1:$ORIGIN_PORT" -log-level WARN \
	-api "127.0.0.1:$A_bevapi" -config "$TMP/bevapi.json"
start toxiproxy "$TMP/server" -host 127.0.0.1 -port "$A_toxiproxy" -config "$TMP/toxiproxy.json"
WAIT="$P_bev:bev $P_bevapi:bevapi $A_bevapi:bevapi $P_toxiproxy:toxiproxy $A_toxiproxy:toxiproxy"
if [[ " $PROXIES " == *" libevent "* ]]; then
	P_libevent=$(free_port)
	start libevent "$TMP/libevent" "$P_libevent" "$ORIGIN_PORT"
	WAIT="$WAIT $P_libevent:libevent"
fi
for p in $WAIT; do
	wait_port "${p%%:*}" "${p##*:}"
done
TICK_US=$((1000000 / $(getconf CLK_TCK)))
note "origin $ORIGIN on 127.0.0.1:$ORIGIN_PORT; $ROUNDS interleaved rounds; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

# user_sys_ticks PID: "UTIME STIME" of PID in clock ticks (/proc/PID/stat).
user_sys_ticks() {
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	set -- $stat
	echo "${12} ${13}"
}

# measure NAME TOXICS: one wrk run; prints "TOXICS NAME REQUESTS CPU_US
# US_PER_REQ USER_US_PER_REQ SYS_US_PER_REQ".
measure() {
	local r=$1 kind=$2 pidv="PID_$1" portv="P_$1" u0 s0 u1 s1 n out
	read -r u0 s0 <<<"$(user_sys_ticks "${!pidv}")"
	out=$(timeout $((DURATION + 20)) wrk -t1 -c50 -d"${DURATION}s" "http://127.0.0.1:${!portv}/")
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	if grep -q "Non-2xx\|Socket errors" <<<"$out"; then note "$r: $(grep "Non-2xx\|Socket errors" <<<"$out")"; fi
	read -r u1 s1 <<<"$(user_sys_ticks "${!pidv}")"
	local us=$(((u1 - u0 + s1 - s0) * TICK_US))
	echo "$kind $r $n $us $(awk -v u="$us" -v n="$n" -v uu=$(((u1 - u0) * TICK_US)) -v su=$(((s1 - s0) * TICK_US)) \
		'BEGIN {printf "%.2f %.2f %.2f", u / n, uu / n, su / n}')"
}

# toxics ADD|DEL: a 0 ms latency toxic in each direction on both APIs.
toxics() {
	local api s
	for api in "$A_bevapi" "$A_toxiproxy"; do
		for s in upstream downstream; do
			if [ "$1" = ADD ]; then
				curl -sf -XPOST "http://127.0.0.1:$api/proxies/bench/toxics" \
					-d "{\"name\":\"l_$s\",\"type\":\"latency\",\"stream\":\"$s\",\"attributes\":{\"latency\":0}}" >/dev/null
			else
				curl -sf -XDELETE "http://127.0.0.1:$api/proxies/bench/toxics/l_$s" >/dev/null
			fi
		done
	done
}

RESULTS=$TMP/results
: >"$RESULTS"
set -- $PROXIES
for round in $(seq "$ROUNDS"); do
	order=()
	for i in $(seq 0 $(($# - 1))); do j=$(((i + round - 1) % $# + 1)); order+=("${!j}"); done
	for kind in none latency0; do
		[ "$kind" = latency0 ] && toxics ADD
		for r in "${order[@]}"; do
			# bev's own listener and the libevent relay have no toxics
			[ "$kind" = latency0 ] && { [ "$r" = bev ] || [ "$r" = libevent ]; } && continue
			line=$(measure "$r" "$kind")
			echo "$round $line" >>"$RESULTS"
			echo "round $round: $line"
		done
		[ "$kind" = latency0 ] && toxics DEL
	done
done

echo
printf '%-10s %-9s %14s %14s %14s %14s\n' proxy toxics "median us/req" "median req" "user us/req" "sys us/req"
declare -A MED
for kind in none latency0; do
	for r in $PROXIES; do
		[ "$kind" = latency0 ] && { [ "$r" = bev ] || [ "$r" = libevent ]; } && continue
		MED[$kind.$r]=$(awk -v k="$kind" -v r="$r" '$2 == k && $3 == r {print $6}' "$RESULTS" | median)
		reqs=$(awk -v k="$kind" -v r="$r" '$2 == k && $3 == r {print $4}' "$RESULTS" | median)
		user=$(awk -v k="$kind" -v r="$r" '$2 == k && $3 == r {print $7}' "$RESULTS" | median)
		sys=$(awk -v k="$kind" -v r="$r" '$2 == k && $3 == r {print $8}' "$RESULTS" | median)
		printf '%-10s %-9s %14s %14s %14s %14s\n' "$r" "$kind" "${MED[$kind.$r]}" "$reqs" "$user" "$sys"
	done
done
echo
ratio none bevapi bev
ratio none bevapi toxiproxy
[[ " $PROXIES " != *" libevent "* ]] || ratio none libevent toxiproxy
ratio latency0 bevapi toxiproxy

# bandwidth: 10 MiB through a 1024 KB/s toxic on each API's proxy.
echo
for r in bevapi toxiproxy; do
	apiv="A_$r" portv="P_$r"
	curl -sf -XPOST "http://127.0.0.1:${!apiv}/proxies/bench/toxics" \
		-d '{"name":"bw","type":"bandwidth","stream":"downstream","attributes":{"rate":1024}}' >/dev/null
	out=$(curl -sf -o /dev/null -w '%{size_download} %{time_total}' --max-time 60 "http://127.0.0.1:${!portv}/big")
	curl -sf -XDELETE "http://127.0.0.1:${!apiv}/proxies/bench/toxics/bw" >/dev/null
	read -r bytes secs <<<"$out"
	printf 'bandwidth %-9s 1024 KB/s: %s bytes in %.3f s (%.0f KB/s, 1 KB = 1000 B)\n' "$r" "$bytes" "$secs" \
		"$(awk -v b="$bytes" -v s="$secs" 'BEGIN {print b / s / 1000}')"
done
