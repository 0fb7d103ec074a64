#!/usr/bin/env bash
# proxymem.sh measures what a relay's memory does under two loads and after
# them (bench/storm makes the load, through each relay in turn, in front of
# nginx or bench/httpd):
#
#   burst: -burst connections at once (500), each downloading 1 MiB to the
#          end; then the relay's RSS is sampled for 30 s. Figure: RSS 30 s
#          after the burst ended against the idle baseline (RSS after one
#          warm-up request and 2 s of rest).
#   reset storm: -storm connections (2000), -at-once of them open at a time
#          (350), each asking for 64 MiB, reading 256 KiB, holding 300 ms so
#          the relay's buffers fill, then resetting. Figure: peak RSS
#          (VmHWM, reset before the storm) per concurrent relay, and RSS
#          30 s after.
# The relay's CPU time during each load and the 30 s after is printed too,
# since giving memory back costs CPU.
#
#   usage: bash bench/proxymem.sh [-relays "bev rawgo libevent"] [-burst N] [-storm N] [-at-once N] [-after SEC]
set -euo pipefail
RELAY_LIST=bev BURST=500 STORM=2000 ATONCE=350 AFTER=30
while [ $# -gt 0 ]; do
	case $1 in
	-relays) RELAY_LIST=$2; shift 2 ;;
	-burst) BURST=$2; shift 2 ;;
	-storm) STORM=$2; shift 2 ;;
	-at-once) ATONCE=$2; shift 2 ;;
	-after) AFTER=$2; shift 2 ;;
	*) echo "usage: $0 [-relays LIST] [-burst N] [-storm N] [-at-once N] [-after SEC]" >&2; exit 2 ;;
	esac
done
. "$(dirname "$0")/lib.sh"

build_relays
start_origin $((64 << 20))
TICK_MS=$((1000 / $(getconf CLK_TCK)))
note "origin $ORIGIN on 127.0.0.1:$ORIGIN_PORT; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

# after PID LABEL: samples RSS for AFTER seconds, prints the samples and the
# CPU spent meanwhile; leaves the last RSS in LAST_RSS.
after() {
	local pid=$1 label=$2 c0 samples="" rss
	c0=$(cpu_ticks "$pid")
	for s in $(seq "$AFTER"); do
		sleep 1
		rss=$(rss_kb "$pid")
		case $s in 1 | 5 | 10 | 20 | "$AFTER") samples+=" +${s}s=$((rss / 1024))MiB" ;; esac
	done
	LAST_RSS=$rss
	echo "  $label RSS after:$samples; CPU in those ${AFTER}s: $((($(cpu_ticks "$pid") - c0) * TICK_MS)) ms"
}

for r in $RELAY_LIST; do
	case " $RELAYS " in *" $r "*) ;; *) note "$r not built, skipped"; continue ;; esac
	start_relay "$r"
	pidv=PID_$r portv=PORT_$r
	pid=${!pidv} addr=127.0.0.1:${!portv}
	"$TMP/storm" -addr "$addr" -mode burst -conns 1 -concurrency 1 -path /mid >/dev/null
	sleep 2
	base=$(rss_kb "$pid")
	echo "$r: idle baseline RSS $((base / 1024)) MiB ($base KiB)"

	c0=$(cpu_ticks "$pid")
	out=$(timeout 300 "$TMP/storm" -addr "$addr" -mode burst -conns "$BURST" -concurrency "$BURST" -path /mid)
	echo "  burst: $out; CPU $((($(cpu_ticks "$pid") - c0) * TICK_MS)) ms; peak RSS $(($(rss_kb "$pid" VmHWM) / 1024)) MiB"
	after "$pid" burst
	echo "  burst: RSS ${AFTER}s after / idle baseline = $(awk -v a="$LAST_RSS" -v b="$base" 'BEGIN {printf "%.2f", a / b}')x"

	echo 5 >"/proc/$pid/clear_refs" || note "cannot reset VmHWM; the peak below is since start"
	c0=$(cpu_ticks "$pid")
	out=$(timeout 600 "$TMP/storm" -addr "$addr" -mode reset -conns "$STORM" -concurrency "$ATONCE" -path /big)
	hwm=$(rss_kb "$pid" VmHWM)
	echo "  reset storm: $out; CPU $((($(cpu_ticks "$pid") - c0) * TICK_MS)) ms"
	echo "  reset storm: peak RSS $((hwm / 1024)) MiB = $(awk -v h="$hwm" -v n="$ATONCE" 'BEGIN {printf "%.2f", h / 1024 / n}') MiB per concurrent relay ($(awk -v h="$hwm" -v b="$base" -v n="$ATONCE" 'BEGIN {printf "%.2f", (h - b) / 1024 / n}') above the baseline)"
	after "$pid" "reset storm"
	echo "  reset storm: RSS ${AFTER}s after / idle baseline = $(awk -v a="$LAST_RSS" -v b="$base" 'BEGIN {printf "%.2f", a / b}')x"
	kill -TERM "$pid" 2>/dev/null || true
done
