# Helpers shared by bench/proxy.sh, bench/proxymem.sh and bench/echo.sh.
# Sourced, not run.
# Everything listens on 127.0.0.1; every process started here is recorded
# in PIDS and stopped by its PID at exit.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
TMP=$(mktemp -d)
PIDS=()

note() { echo "# $*" >&2; }

# machine describes what a figure depends on beyond the code: the CPUs,
# the load, and the kernel's TCP congestion control, whose pacing (BBR's)
# decides much of a single loopback stream (docs/benchmarks.md).
machine() {
	echo "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), tcp $(cat /proc/sys/net/ipv4/tcp_congestion_control 2>/dev/null || echo '?')"
}

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port prints a port no socket uses, below the ephemeral range (the
# loads leave thousands of sockets in TIME_WAIT on ephemeral ports).
free_port() {
	local p low
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % (low > 12000 ? low - 10000 : 2000)))
		if ! ss -Htan "sport = :$p" | grep -q .; then echo "$p"; return; fi
	done
	echo "no free port" >&2; return 1
}

# wait_port PORT [NAME]: until something accepts on 127.0.0.1:PORT (30 s
# at most); on failure, prints what NAME logged.
wait_port() {
	for _ in $(seq 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on 127.0.0.1:$1${2:+ ($2)}" >&2
	[ -z "${2:-}" ] || tail -5 "$TMP/$2.log" >&2
	return 1
}

# start NAME CMD...: runs CMD in the background (output to $TMP/NAME.log),
# records its PID in PIDS and in the variable PID_NAME.
start() {
	local name=$1; shift
	"$@" >"$TMP/$name.log" 2>&1 &
	PIDS+=("$!")
	printf -v "PID_$name" '%s' "$!"
}

# stop NAME: stops the process started as NAME (SIGTERM, SIGKILL after
# 5 s), reaps it and drops its PID from PIDS, so that cleanup never
# signals a PID the system has given to another process since.
stop() {
	local v="PID_$1" pid i
	pid=${!v}
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for i in "${!PIDS[@]}"; do
		if [ "${PIDS[$i]}" = "$pid" ]; then unset 'PIDS[i]'; fi
	done
}

# cpu_ticks PID: user+system CPU time of PID in clock ticks (/proc/PID/stat).
cpu_ticks() {
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }                 # fields from the third on
	set -- $stat
	echo $(( ${12} + ${13} ))          # utime, stime: fields 14 and 15
}

# rss_kb PID [FIELD]: VmRSS (or FIELD, such as VmHWM) of PID in KiB.
rss_kb() { awk -v f="${2:-VmRSS}:" '$1 == f {print $2}' "/proc/$1/status"; }

# median: the median of the numbers on stdin, one a line.
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# ratio KIND A B prints, for rows of kind KIND in $RESULTS (columns: round,
# kind, name, requests, _, µs per request), A's cost over B's: the ratio of
# the medians (from the caller's MED array) and the median of the per-round
# ratios (same round, same load).
ratio() {
	local kind=$1 a=$2 b=$3 per
	per=$(awk -v k="$kind" -v a="$a" -v b="$b" '$2 == k && $3 == a {x[$1] = $6} $2 == k && $3 == b {y[$1] = $6}
		END {for (i in x) if (i in y && y[i] > 0) print x[i] / y[i]}' "$RESULTS" | median)
	printf '%-9s %s/%s: %.2fx (ratio of medians), %.2fx (median of per-round ratios)\n' "$kind" "$a" "$b" \
		"$(awk -v x="${MED[$kind.$a]}" -v y="${MED[$kind.$b]}" 'BEGIN {print (y > 0 ? x / y : 0)}')" "$per"
}

# build_at REV PKG OUT: builds package PKG (./examples/echo, say) as it
# was at git revision REV into OUT, from an export of that revision in
# $TMP, so a change is measured against the build before it.
build_at() {
	local src="$TMP/src-$(basename "$3")"
	mkdir -p "$src"
	git -C "$REPO" archive "$1" | tar -x -C "$src"
	(cd "$src" && go build -o "$3" "$2")
	note "$(basename "$3"): $2 at $1 ($(git -C "$REPO" rev-parse --short "$1"))"
}

# build_relays: builds bev's proxy, the plain-Go relay and, when libevent is
# installed, the libevent relay into $TMP; sets RELAYS to those built.
build_relays() {
	(cd "$REPO" && go build -o "$TMP/bev" ./examples/proxy && go build -o "$TMP/rawgo" ./bench/rawproxy &&
		go build -o "$TMP/httpd" ./bench/httpd && go build -o "$TMP/storm" ./bench/storm)
	RELAYS="bev rawgo"
	if command -v cc >/dev/null && pkg-config --exists libevent_core 2>/dev/null; then
		cc -O2 -o "$TMP/libevent" "$BENCH_DIR/levproxy/levproxy.c" $(pkg-config --cflags --libs libevent_core)
		RELAYS="bev libevent rawgo"
	else
		note "libevent relay skipped: no C compiler or libevent-dev (apt-get install -y libevent-dev pkg-config)"
	fi
}

# start_origin BIGBYTES: starts the HTTP server the relays front: nginx
# (one worker, no logs) when installed, else bench/httpd. GET / answers 100
# bytes, GET /mid 1 MiB, GET /big BIGBYTES. Sets ORIGIN_PORT and ORIGIN.
start_origin() {
	ORIGIN_PORT=$(free_port)
	if command -v nginx >/dev/null; then
		mkdir -p "$TMP/www" "$TMP/nginx"
		head -c 99 /dev/zero | tr '\0' x >"$TMP/www/index.html"; echo >>"$TMP/www/index.html"
		truncate -s "$1" "$TMP/www/big"
		truncate -s 1M "$TMP/www/mid"
		cat >"$TMP/nginx/nginx.conf" <<-CONF
			daemon off;
			master_process off;
			worker_processes 1;
			pid $TMP/nginx/nginx.pid;
			error_log $TMP/nginx/error.log crit;
			events { worker_connections 8192; }
			http {
			    access_log off;
			    client_body_temp_path $TMP/nginx/body;
			    proxy_temp_path $TMP/nginx/proxy;
			    fastcgi_temp_path $TMP/nginx/fastcgi;
			    keepalive_requests 1000000;
			    sendfile on;
			    server {
			        listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
			        root $TMP/www;
			        default_type application/octet-stream;
			    }
			}
		CONF
		start origin nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf"
		ORIGIN=nginx
	else
		note "nginx not installed: bench/httpd serves instead (apt-get install -y nginx-light)"
		start origin "$TMP/httpd" -listen "127.0.0.1:$ORIGIN_PORT" -big "$1"
		ORIGIN=httpd
	fi
	wait_port "$ORIGIN_PORT" origin
}

# start_relay NAME: starts relay NAME in front of the origin; sets PORT_NAME
# and PID_NAME. bev's proxy logs to $TMP/bev.log, as an operator's would
# go to a file.
start_relay() {
	local name=$1 port
	port=$(free_port)
	case $name in
	bev | bevbase) start "$name" "$TMP/$name" -listen "127.0.0.1:$port" -target "127.0.0.1:$ORIGIN_PORT" ${BEV_FLAGS:-} ;;
	rawgo) start rawgo "$TMP/rawgo" -listen "127.0.0.1:$port" -target "127.0.0.1:$ORIGIN_PORT" ;;
	libevent) start libevent "$TMP/libevent" "$port" "$ORIGIN_PORT" ;;
	esac
	printf -v "PORT_$name" '%s' "$port"
	wait_port "$port" "$name"
}
