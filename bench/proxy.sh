#!/usr/bin/env bash
# proxy.sh compares the CPU a relay spends per HTTP request: bev's
# examples/proxy, a plain-Go relay (bench/rawproxy) and a libevent relay of
# le-proxy's shape (bench/levproxy, built when libevent-dev is installed),
# all in front of one HTTP server answering 100 bytes (nginx when
# installed, else bench/httpd).
#
# Each round runs, for every relay in turn (the order rotates per round):
#   keep-alive:    wrk -t1 -c50 -d3s        CPU per request
#   no keep-alive: ab -q -c20 -n5000         CPU per connection (5000: a
#                  run then spans some 60 clock ticks of CPU, not 25)
# and reads the relay process's user+system CPU time from /proc/PID/stat
# before and after. It prints every round, then the medians and the ratios
# bev/libevent and bev/plain-Go. With -base REV, bev's proxy as of git
# revision REV runs too (as "bevbase"), and bev/bevbase says what the
# changes since REV did, measured under the same load. Everything is on
# 127.0.0.1 and every process is stopped by its PID at exit.
#
#   usage: bash bench/proxy.sh [-rounds N] [-duration SEC] [-requests N] [-base REV]
#   needs: go, wrk, ab (apt-get install -y wrk apache2-utils); optional
#          nginx-light, libevent-dev and pkg-config.
set -euo pipefail
ROUNDS=5 DURATION=3 REQUESTS=5000 BASE=
while [ $# -gt 0 ]; do
	case $1 in
	-rounds) ROUNDS=$2; shift 2 ;;
	-duration) DURATION=$2; shift 2 ;;
	-requests) REQUESTS=$2; shift 2 ;;
	-base) BASE=$2; shift 2 ;;
	*) echo "usage: $0 [-rounds N] [-duration SEC] [-requests N] [-base REV]" >&2; exit 2 ;;
	esac
done
for tool in go wrk ab; do
	command -v $tool >/dev/null || { echo "proxy.sh: $tool not found (apt-get install -y wrk apache2-utils)" >&2; exit 2; }
done
. "$(dirname "$0")/lib.sh"

build_relays
if [ -n "$BASE" ]; then
	build_at "$BASE" ./examples/proxy "$TMP/bevbase"
	RELAYS="$RELAYS bevbase"
fi
start_origin $((1 << 20))
for r in $RELAYS; do start_relay "$r"; done
TICK_US=$((1000000 / $(getconf CLK_TCK)))
note "origin $ORIGIN on 127.0.0.1:$ORIGIN_PORT; relays: $RELAYS; $ROUNDS interleaved rounds; $(machine)"

# measure RELAY KIND: one run; prints "KIND RELAY REQUESTS CPU_US US_PER_REQ".
measure() {
	local r=$1 kind=$2 pidv="PID_$1" portv="PORT_$1" before after n out
	local url="http://127.0.0.1:${!portv}/"
	before=$(cpu_ticks "${!pidv}")
	if [ "$kind" = keepalive ]; then
		out=$(timeout $((DURATION + 20)) wrk -t1 -c50 -d"${DURATION}s" "$url")
		n=$(awk '/requests in/ {print $1}' <<<"$out")
		if grep -q "Non-2xx\|Socket errors" <<<"$out"; then note "$r: $(grep "Non-2xx\|Socket errors" <<<"$out")"; fi
	else
		out=$(timeout 120 ab -q -c20 -n"$REQUESTS" "$url")
		n=$(awk '/^Complete requests/ {print $3}' <<<"$out")
		local failed
		failed=$(awk '/^Failed requests/ {print $3}' <<<"$out")
		[ "$failed" = 0 ] || note "$r: ab reports $failed failed requests"
	fi
	after=$(cpu_ticks "${!pidv}")
	local us=$(((after - before) * TICK_US))
	echo "$kind $r $n $us $(awk -v u="$us" -v n="$n" 'BEGIN {printf "%.2f", u / n}')"
}

RESULTS=$TMP/results
: >"$RESULTS"
set -- $RELAYS
count=$#
for round in $(seq "$ROUNDS"); do
	order=()
	for i in $(seq 0 $((count - 1))); do
		j=$(((i + round - 1) % count + 1))
		order+=("${!j}")
	done
	for kind in keepalive close; do
		for r in "${order[@]}"; do
			line=$(measure "$r" "$kind")
			echo "$round $line" >>"$RESULTS"
			echo "round $round: $line"
		done
	done
done

echo
printf '%-10s %-9s %14s %14s\n' relay kind "median us/req" "median req"
declare -A MED
for kind in keepalive close; do
	for r in $RELAYS; do
		MED[$kind.$r]=$(awk -v k="$kind" -v r="$r" '$2 == k && $3 == r {print $6}' "$RESULTS" | median)
		reqs=$(awk -v k="$kind" -v r="$r" '$2 == k && $3 == r {print $4}' "$RESULTS" | median)
		printf '%-10s %-9s %14s %14s\n' "$r" "$kind" "${MED[$kind.$r]}" "$reqs"
	done
done
echo
for kind in keepalive close; do
	case " $RELAYS " in *" libevent "*) ratio "$kind" bev libevent ;; esac
	ratio "$kind" bev rawgo
	case " $RELAYS " in *" bevbase "*) ratio "$kind" bev bevbase ;; esac
	case " $RELAYS " in *" libevent "*) ratio "$kind" rawgo libevent ;; esac
done
