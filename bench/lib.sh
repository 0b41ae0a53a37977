# Shared by the benchmark wrappers that run one driver and keep a baseline (bench/readpath.sh,
# bench/throughput.sh): source it, then call `bench_run NAME LIMIT_S DRIVER [ARGS...]`.
# It builds the release binary, runs DRIVER OUT.json ARGS under `timeout`, stops the driver
# (which stops its children) on exit or Ctrl-C, and renders bench/NAME_report.py into
# BENCHMARKS.md next to bench/NAME-baseline.json; with `--baseline` as the wrapper's first
# argument (BENCH_BASELINE=1) the run becomes the baseline.

bench_run() {
    local name="$1" limit="$2"
    shift 2
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
    export RUST_LOG="${RUST_LOG:-warn}"
    command -v nats-server >/dev/null || { echo "nats-server not found (apt-get install nats-server)" >&2; exit 1; }

    echo "== cargo build --release"
    cargo build --release --quiet

    BENCH_OUT="$(mktemp -t "dota-bench-$name-XXXXXX.json")"
    BENCH_DRIVER_PID=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM

    timeout --signal=TERM --kill-after=30 "$limit" python3 "$@" "$BENCH_OUT" &
    BENCH_DRIVER_PID=$!
    wait "$BENCH_DRIVER_PID"
    BENCH_DRIVER_PID=""

    local baseline="bench/$name-baseline.json"
    if [[ -n "${BENCH_BASELINE:-}" ]]; then
        cp "$BENCH_OUT" "$baseline"
        python3 "bench/${name}_report.py" BENCHMARKS.md --baseline "$baseline"
    else
        python3 "bench/${name}_report.py" BENCHMARKS.md --baseline "$baseline" --latest "$BENCH_OUT"
    fi
    echo "== results written to BENCHMARKS.md"
}

bench_cleanup() {
    if [[ -n "${BENCH_DRIVER_PID:-}" ]] && kill -0 "$BENCH_DRIVER_PID" 2>/dev/null; then
        kill -TERM "$BENCH_DRIVER_PID" 2>/dev/null || true
        wait "$BENCH_DRIVER_PID" 2>/dev/null || true
    fi
    rm -f "${BENCH_OUT:-}"
}

# Reads the wrapper's arguments: `--baseline` or nothing.
bench_args() {
    case "${1:-}" in
        --baseline) BENCH_BASELINE=1 ;;
        "") ;;
        *) echo "usage: $0 [--baseline]" >&2; exit 2 ;;
    esac
}
