#!/usr/bin/env bash
# The showcase proxy against HAProxy itself, side by side (issue 28): both in front of the
# same two backends (`net_server http_hello tokio --workers 1`, each its own process), driven
# by wrk, alternating proxy and HAProxy, ROUNDS rounds, for HTTP/1.1 keep-alive and
# connection-per-request (`Connection: close`), at 1 and 2 threads. Prints req/s, p50/p99 and
# each proxy's CPU per request (its process's user+system time from /proc, over the run),
# and wrk's own: wrk runs one thread, so when its CPU per request times req/s nears a whole
# core (1,000,000 µs per second), the load generator, not the proxy, sets req/s. The last
# columns count how often each proxy's threads were preempted (switched out while runnable,
# /proc's nonvoluntary_ctxt_switches) per 1,000 requests: on 2 CPUs shared with wrk and the
# backends, a backend the kernel places on a proxy thread's CPU preempts it at each request
# that wakes it, and that placement, not the proxy's code, then sets req/s; and how much of
# the CPUs idled during the round (with PIN=1: the proxy's CPU / the peers' CPUs), which says
# whose CPU ran out first. At the end, per
# thread count and mode: the proxy / HAProxy ratios' range over the rounds and the rounds
# where issue 28's goal held (1.05x the req/s or more, 0.95x the CPU per request or less,
# p99 no higher).
#
# PIN=1 takes the kernel's placement out of the 1-thread rows: the proxy under test (HAProxy
# or the example) runs on the last CPU alone (`taskset`), wrk and the backends on the others,
# so each proxy is measured as if it had a core of its own and its peers did not share it.
# The 2-thread rows are never pinned (two proxy threads on two CPUs share them with the
# peers by design).
#
# Usage: benches/scripts/vs_haproxy.sh            (ROUNDS=3 DURATION=10 CONNS=64 by default)
#        ROUNDS=1 DURATION=3 benches/scripts/vs_haproxy.sh   (a quick look)
#        PIN=1 THREADS_LIST=1 benches/scripts/vs_haproxy.sh  (1 thread, the proxy on a CPU of its own)
# Installs haproxy and wrk from Debian's packages when missing (needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS_LIST=${THREADS_LIST:-"1 2"}
MODES=${MODES:-"keepalive close"}
PIN=${PIN:-0}
NCPU=$(nproc)
if [ "$PIN" = 1 ] && [ "$NCPU" -lt 2 ]; then
    echo "vs_haproxy: PIN=1 needs 2 CPUs or more (one for the proxy, the others for wrk and the backends); this machine has $NCPU" >&2
    exit 2
fi
ALL_CPUS="0-$((NCPU - 1))"
PROXY_CPU=$((NCPU - 1))
PEER_CPUS="0-$((NCPU > 1 ? NCPU - 2 : 0))"

need=()
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    echo "vs_haproxy: installing ${need[*]} (Debian packages)" >&2
    { $sudo apt-get install -y -q "${need[@]}" || { $sudo apt-get update -q && $sudo apt-get install -y -q "${need[@]}"; }; } >/dev/null
fi
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

cargo build --release -q -p pinwheel-benches --bin net_server
cargo build --release -q -p pinwheel-examples --example proxy
NET_SERVER=target/release/net_server
PROXY=target/release/examples/proxy

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The two backends, each alone in its process; they serve until their stdin closes.
backends=()
for i in 1 2; do
    mkfifo "$tmp/in$i"
    "$NET_SERVER" http_hello tokio --workers 1 <"$tmp/in$i" >"$tmp/out$i" 2>/dev/null &
    pids+=($!)
    exec {fd}>"$tmp/in$i"
    eval "backend_fd$i=$fd"
    for _ in $(seq 100); do [ -s "$tmp/out$i" ] && break; sleep 0.05; done
    backends+=("$(head -1 "$tmp/out$i" | awk '{print $2}')")
done
echo "# backends: ${backends[*]} (net_server http_hello tokio --workers 1)"
echo "# $("$HAPROXY" -v | head -1)"
echo "# wrk -t1 -c$CONNS -d${DURATION}s --latency, $ROUNDS rounds, alternating; $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
[ "$PIN" = 1 ] && echo "# PIN=1: at 1 thread the proxy under test runs on CPU $PROXY_CPU alone, wrk and the backends on CPUs $PEER_CPUS"

# Sets where the rows of $1 threads run: the proxies' CPUs and the peers' (wrk's and the
# backends'), and moves every thread of the backends there.
placement() {
    if [ "$PIN" = 1 ] && [ "$1" = 1 ]; then
        proxy_cpus=$PROXY_CPU
        peer_cpus=$PEER_CPUS
    else
        proxy_cpus=$ALL_CPUS
        peer_cpus=$ALL_CPUS
    fi
    for p in "${pids[@]:0:2}"; do taskset -a -p -c "$peer_cpus" "$p" >/dev/null; done
}

# CPU time (user + system, in clock ticks) of process $1.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# How many times the threads of process $1 were preempted (switched out while runnable).
preemptions() { cat /proc/"$1"/task/*/status | awk '/^nonvoluntary_ctxt_switches/ {n += $2} END {print n + 0}'; }
TCK=$(getconf CLK_TCK)
# Idle + iowait clock ticks of the CPUs in list $1 ("0-2", "3"), from /proc/stat.
idle_ticks() {
    local lo=${1%-*} hi=${1#*-}
    awk -v lo="$lo" -v hi="$hi" '$1 ~ /^cpu[0-9]+$/ { c = substr($1, 4) + 0; if (c >= lo && c <= hi) n += $5 + $6 } END { print n + 0 }' /proc/stat
}
# The CPUs in list $1.
cpu_count() { local lo=${1%-*} hi=${1#*-}; echo $((hi - lo + 1)); }

# Starts HAProxy with `nbthread $1` on a free port; echoes "PID PORT".
start_haproxy() {
    local port cfg
    port=$(free_port)
    cfg="$tmp/haproxy-$1.cfg"
    cat >"$cfg" <<EOF
global
    nbthread $1
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend fe
    bind 127.0.0.1:$port
    default_backend be
backend be
    balance roundrobin
    server b1 ${backends[0]}
    server b2 ${backends[1]}
EOF
    taskset -c "$proxy_cpus" "$HAPROXY" -f "$cfg" -db >/dev/null 2>&1 &
    echo "$! $port"
}

# Starts the proxy example with `--threads $1` on a free port; echoes "PID PORT".
start_proxy() {
    local port stats
    port=$(free_port)
    stats=$(free_port)
    taskset -c "$proxy_cpus" "$PROXY" --listen "127.0.0.1:$port" --stats "127.0.0.1:$stats" --threads "$1" \
        --backend "${backends[0]}" --backend "${backends[1]}" >/dev/null 2>&1 &
    echo "$! $port"
}

wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "vs_haproxy: nothing listens on $1" >&2; return 1; }

# Runs wrk against port $1 in mode $2, measuring process $3's CPU and preemptions and wrk's
# CPU, and how much the CPUs idled; prints "REQ_PER_S P50 P99 CPU_US_PER_REQ WRK_US_PER_REQ
# PREEMPTED_PER_1K_REQ IDLE" (IDLE: "P%" or, pinned, "P%/O%": the proxy's CPUs / the peers').
run_wrk() {
    local port=$1 mode=$2 pid=$3 hdr=() before after out reqs rps p50 p99 wrk_ticks pre0 pre1
    local pi0 pi1 oi0 oi1 t0 t1 idle
    [ "$mode" = close ] && hdr=(-H "Connection: close")
    pre0=$(preemptions "$pid")
    before=$(cpu_ticks "$pid")
    pi0=$(idle_ticks "$proxy_cpus")
    oi0=$(idle_ticks "$peer_cpus")
    t0=$(date +%s%N)
    # wrk's CPU: the user + system time of the children this shell waited for (fields 16, 17).
    out=$(taskset -c "$peer_cpus" bash -c 'wrk "$@"; echo "wrk-cpu-ticks $(awk "{print \$16 + \$17}" /proc/$$/stat)"' _ \
        -t1 -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" "http://127.0.0.1:$port/")
    after=$(cpu_ticks "$pid")
    pre1=$(preemptions "$pid")
    pi1=$(idle_ticks "$proxy_cpus")
    oi1=$(idle_ticks "$peer_cpus")
    t1=$(date +%s%N)
    idle=$(awk -v a=$((pi1 - pi0)) -v b=$((oi1 - oi0)) -v np="$(cpu_count "$proxy_cpus")" -v no="$(cpu_count "$peer_cpus")" \
        -v s=$((t1 - t0)) -v tck="$TCK" -v same="$([ "$proxy_cpus" = "$peer_cpus" ] && echo 1 || echo 0)" \
        'BEGIN { w = s / 1e9 * tck; if (same) printf "%.0f%%", 100 * a / (w * np); else printf "%.0f%%/%.0f%%", 100 * a / (w * np), 100 * b / (w * no) }')
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    wrk_ticks=$(echo "$out" | awk '$1 == "wrk-cpu-ticks" {print $2}')
    awk -v r="$rps" -v a="$p50" -v b="$p99" -v t=$((after - before)) -v w="$wrk_ticks" -v n="$reqs" -v tck="$TCK" -v p=$((pre1 - pre0)) -v i="$idle" \
        'BEGIN { printf "%s %s %s %.2f %.2f %.0f %s\n", r, a, b, (n > 0 ? t / tck * 1e6 / n : 0), (n > 0 ? w / tck * 1e6 / n : 0), (n > 0 ? p * 1000 / n : 0), i }'
}

printf '%-8s %-9s %-7s %-9s %12s %9s %9s %12s %12s %14s %9s\n' threads mode round who "req/s" p50 p99 "cpu µs/req" "wrk µs/req" "preempted/1k" idle
for threads in $THREADS_LIST; do
    placement "$threads"
    read -r hpid hport < <(start_haproxy "$threads")
    pids+=("$hpid")
    read -r ppid pport < <(start_proxy "$threads")
    pids+=("$ppid")
    wait_port "$hport"
    wait_port "$pport"
    for mode in $MODES; do
        for round in $(seq "$ROUNDS"); do
            # Alternate which one goes first.
            if [ $((round % 2)) = 1 ]; then order="haproxy proxy"; else order="proxy haproxy"; fi
            for who in $order; do
                if [ "$who" = haproxy ]; then r=$(run_wrk "$hport" "$mode" "$hpid"); else r=$(run_wrk "$pport" "$mode" "$ppid"); fi
                read -r rps p50 p99 cpu wrk_cpu preempted idle <<<"$r"
                printf '%-8s %-9s %-7s %-9s %12s %9s %9s %12s %12s %14s %9s\n' "$threads" "$mode" "$round" "$who" "$rps" "$p50" "$p99" "$cpu" "$wrk_cpu" "$preempted" "$idle"
                echo "$threads $mode $round $who $rps $p99 $cpu" >>"$tmp/rounds"
            done
        done
    done
    kill "$hpid" "$ppid" 2>/dev/null || true
done

# The issue's goal, per round: the proxy at 1.05x HAProxy's req/s or more, 0.95x its CPU per
# request or less, and a p99 no higher.
echo "# per threads and mode: proxy / HAProxy per round (min - max), and the rounds where the goal held"
awk '
    function ms(v) {  # wrk latency ("840.00us", "2.45ms", "1.02s") in ms
        if (v ~ /us$/) return v / 1000
        if (v ~ /ms$/) return v + 0
        if (v ~ /s$/) return v * 1000
        return v + 0
    }
    { k = $1 " " $2 " " $3; rps[k, $4] = $5; p99[k, $4] = ms($6); cpu[k, $4] = $7; keys[k] = 1; conf[$1 " " $2] = 1 }
    END {
        for (c in conf) {
            n = 0; held = 0; lower = 0; rmin = 1e9; rmax = 0; cmin = 1e9; cmax = 0
            for (k in keys) {
                split(k, f, " ")
                if (f[1] " " f[2] != c) continue
                n++
                r = rps[k, "proxy"] / rps[k, "haproxy"]; u = cpu[k, "proxy"] / cpu[k, "haproxy"]
                low = p99[k, "proxy"] <= p99[k, "haproxy"]
                if (r < rmin) rmin = r; if (r > rmax) rmax = r
                if (u < cmin) cmin = u; if (u > cmax) cmax = u
                lower += low; held += (r >= 1.05 && u <= 0.95 && low)
            }
            split(c, f, " ")
            printf "%s thread(s) %-9s req/s %.2f - %.2fx, cpu/req %.2f - %.2fx, p99 no higher in %d of %d, goal held in %d of %d rounds\n", f[1], f[2], rmin, rmax, cmin, cmax, lower, n, held, n
        }
    }' "$tmp/rounds" | sort
