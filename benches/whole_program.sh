#!/usr/bin/env bash
# Whole-program figures for BENCHMARKS.md. Every number there comes from this script.
#
#   benches/whole_program.sh [SECTION...]
#
# Sections (default: idle engine background upskill size):
#   idle        console CPU over 60 s with no frame arriving (release binary in tmux, 160x48)
#   engine      headless engine, folder of 1280x720 JPEGs, 2000 answered frames at the
#               highest source rate (120 fps) against a fake Ollama with zero latency:
#               (user+sys)/frames, and RSS sampled as the frames go by
#   background  headless engine, 30 fps 1280x720 source, student answering in 1 s: CPU share
#   upskill     upskill wall time vs calls x 50 ms / concurrency (cargo bench upskill_overhead)
#   size        release binary size
#   build       clean release build time and size in a separate target dir (deleted after),
#               then the same without lto / codegen-units=1 / strip (size, build time, prep)
#
# The fake Ollama is a separate process (`cargo bench --bench fake_ollama -- serve MS`), so
# the CPU figures are the engine's own (utime+stime from /proc/PID/stat), not the server's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
HZ=$(getconf CLK_TCK)
SECTIONS=("$@")
[ ${#SECTIONS[@]} -eq 0 ] && SECTIONS=(idle engine background upskill size)

WORK=$(mktemp -d /tmp/gemmaedge-whole.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    tmux kill-session -t gemmaedge-idle 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(date -u +%FT%TZ)"
cargo build -q --release
BIN=$CARGO_TARGET_DIR/release/gemmaedge-tui
bench_exe() { # path of a bench target's executable (built if needed)
    cargo bench -q --no-run --bench "$1" --message-format=json 2>/dev/null |
        grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4
}
FAKE=$(bench_exe fake_ollama)
PREP=$(bench_exe prep_cli)
"$PREP" make "$WORK/frames" >/dev/null
cp -r skills "$WORK/skills"

ticks() { # utime+stime of a process (all its threads), in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

start_fake() { # start_fake DELAY_MS -> sets URL and FAKE_PID
    "$FAKE" serve "$1" >"$WORK/fake.out" &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
    for _ in $(seq 100); do
        grep -q '^PORT=' "$WORK/fake.out" 2>/dev/null && break
        sleep 0.05
    done
    URL="http://127.0.0.1:$(sed -n 's/^PORT=//p' "$WORK/fake.out")"
}
stop_fake() { kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; }

write_config() { # write_config URL -> $WORK/config.toml
    rm -rf "$WORK/logs"
    cat >"$WORK/config.toml" <<EOF
[student]
host = "$1"
model = "gemma4:e2b"
timeout_secs = 10
[teacher]
host = "$1"
model = "gemma4:26b"
timeout_secs = 10
[source]
kind = "folder"
path = "$WORK/frames"
[paths]
skills = "$WORK/skills"
eval = "$ROOT/eval"
logs = "$WORK/logs"
EOF
}

section_idle() {
    echo "== idle console: 60 s, no frame arriving (--fps 0.01: one frame at start, the next after 100 s)"
    start_fake 0
    write_config "$URL"
    tmux kill-session -t gemmaedge-idle 2>/dev/null || true
    tmux new-session -d -s gemmaedge-idle -x 160 -y 48 \
        "exec $BIN --config $WORK/config.toml --fps 0.01"
    sleep 5 # start, health checks, the first frame answered and drawn
    local pid t0 t1
    pid=$(tmux list-panes -t gemmaedge-idle -F '#{pane_pid}')
    t0=$(ticks "$pid")
    sleep 60
    t1=$(ticks "$pid")
    tmux capture-pane -p -t gemmaedge-idle | head -3 | cut -c1-120
    tmux send-keys -t gemmaedge-idle q
    sleep 1
    tmux kill-session -t gemmaedge-idle 2>/dev/null || true
    stop_fake
    awk -v d=$((t1 - t0)) -v hz="$HZ" 'BEGIN {
        printf "idle CPU: %d ticks in 60 s = %.3f%% of one core (target <= 1%%)\n", d, d / hz / 60 * 100 }'
}

section_engine() {
    local frames=2000
    echo "== headless engine: $frames frames, 1280x720 JPEG folder at 120 fps, fake Ollama with 0 ms latency"
    start_fake 0
    write_config "$URL"
    # /usr/bin/time gives the exact user+sys and max RSS of the whole run.
    /usr/bin/time -f '%U %S %M %e' -o "$WORK/time.txt" \
        "$BIN" --headless --config "$WORK/config.toml" --fps 120 --max-frames "$frames" \
        >"$WORK/engine.out" 2>&1 &
    local tpid=$! pid=""
    for _ in $(seq 100); do
        pid=$(pgrep -P "$tpid" || true)
        [ -n "$pid" ] && break
        sleep 0.02
    done
    : >"$WORK/rss.txt"
    while kill -0 "$pid" 2>/dev/null; do
        # RSS and answered frames so far, twice a second.
        local n rss
        n=$(grep -cE '#[0-9]+ student [^f]' "$WORK/engine.out" || true)
        rss=$(rss_kb "$pid" 2>/dev/null || echo 0)
        [ -n "$rss" ] && [ "$rss" != 0 ] && echo "$n $rss $(hwm_kb "$pid")" >>"$WORK/rss.txt"
        sleep 0.5
    done
    wait "$tpid" || true
    local answered
    answered=$(grep -cE '#[0-9]+ student [^f]' "$WORK/engine.out" || true)
    stop_fake
    echo "answered: $answered, superseded (captured, never decoded): $(grep -o '(\([0-9]*\) newer-frame skips)' "$WORK/engine.out" | tr -dc '0-9\n' | awk '{ s += $1 } END { print s + 0 }')"
    awk -v n="$answered" '{
        printf "engine CPU: %.2f s user + %.2f s sys over %.1f s wall for %d frames = %.2f ms/frame (target <= 5 ms), %.1f frames/s; max RSS %.1f MB\n",
            $1, $2, $4, n, ($1 + $2) * 1000 / n, n / $4, $3 / 1024 }' "$WORK/time.txt"
    awk '{ n[NR] = $1; r[NR] = $2; h = $3 } END {
        printf "RSS (MB) at answered frames:"
        for (q = 1; q <= 4; q++) { i = int(NR * q / 4); if (i < 1) i = 1; printf "  %d: %.1f", n[i], r[i] / 1024 }
        printf "\npeak RSS (VmHWM): %.1f MB (target <= 60 MB, flat)\n", h / 1024 }' "$WORK/rss.txt"
}

section_background() {
    local secs=30
    echo "== background: 30 fps 1280x720 source, student answering in 1 s, $secs s window"
    start_fake 1000
    write_config "$URL"
    "$BIN" --headless --config "$WORK/config.toml" --fps 30 >"$WORK/bg.out" 2>&1 &
    local pid=$! t0 t1 a0 a1
    PIDS+=("$pid")
    sleep 5
    t0=$(ticks "$pid")
    a0=$(grep -cE '#[0-9]+ student [^f]' "$WORK/bg.out" || true)
    sleep "$secs"
    t1=$(ticks "$pid")
    a1=$(grep -cE '#[0-9]+ student [^f]' "$WORK/bg.out" || true)
    kill -INT "$pid"
    wait "$pid" || true
    stop_fake
    awk -v d=$((t1 - t0)) -v hz="$HZ" -v s="$secs" -v a=$((a1 - a0)) 'BEGIN {
        printf "background CPU: %.2f s in %d s = %.2f%% of one core (target <= 5%%); %d answers, %d frames captured\n",
            d / hz, s, d / hz / s * 100, a, 30 * s }'
}

section_upskill() {
    echo "== upskill overhead: 4 candidates x 16 cases, student call = 50 ms"
    cargo bench -q --bench upskill_overhead 2>/dev/null | grep -v '^RESULT'
}

section_size() {
    echo "== release binary: $(stat -c %s "$BIN") bytes ($(du -h "$BIN" | cut -f1)), $BIN"
}

section_build() {
    local clean=${CLEAN_TARGET:-/work/target-perf-clean}
    echo "== clean release build in $clean (deleted after)"
    rm -rf "$clean"
    local t0 t1
    t0=$(date +%s)
    CARGO_TARGET_DIR=$clean cargo build -q --release
    t1=$(date +%s)
    echo "clean build (lto=thin, codegen-units=1, strip): $((t1 - t0)) s, binary $(stat -c %s "$clean/release/gemmaedge-tui") bytes"
    t0=$(date +%s)
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR=$clean cargo build -q --release
    t1=$(date +%s)
    echo "plain release profile (lto=false, codegen-units=16, no strip), clean again: $((t1 - t0)) s, binary $(stat -c %s "$clean/release/gemmaedge-tui") bytes"
    rm -rf "$clean"
}

for s in "${SECTIONS[@]}"; do "section_$s"; done
