# shellcheck shell=bash
# Sourced by the bench scripts: where things are, the load tools (built once per version into
# the cache directory, outside the repo), the release build, and small process helpers.
#   BENCH_CACHE  ${KUBERAY_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kuberay-apiserver-bench}
#   ghz          gRPC load tool, `go install github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION`
#   oha          HTTP load tool, `cargo install oha --version $OHA_VERSION --locked`

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")
BENCH_CACHE=${KUBERAY_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kuberay-apiserver-bench}
GHZ_VERSION=v0.93.0
OHA_VERSION=1.16.0
PYTHON=${PYTHON:-python3}

bench_log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { bench_log "error: $*"; exit 2; }

# Prints the path of ghz, building it first if the cache lacks it.
bench_ghz() {
  local dir=$BENCH_CACHE/ghz-$GHZ_VERSION
  if [[ ! -x $dir/bin/ghz ]]; then
    command -v go >/dev/null 2>&1 || bench_die "go is needed to build ghz (put it on PATH)"
    bench_log "building ghz $GHZ_VERSION into $dir (once)"
    mkdir -p "$dir"
    GOBIN=$dir/bin.tmp go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION" >&2
    rm -rf "${dir:?}/bin"
    mv "$dir/bin.tmp" "$dir/bin"
  fi
  echo "$dir/bin/ghz"
}

# Prints the path of oha, building it first if the cache lacks it.
bench_oha() {
  local dir=$BENCH_CACHE/oha-$OHA_VERSION
  if [[ ! -x $dir/bin/oha ]]; then
    bench_log "building oha $OHA_VERSION into $dir (once; a few minutes)"
    CARGO_TARGET_DIR=$BENCH_CACHE/oha-target cargo install oha --version "$OHA_VERSION" --locked \
      --root "$dir" >&2
    rm -rf "$BENCH_CACHE/oha-target"
  fi
  echo "$dir/bin/oha"
}

# Builds the server (release profile) and prints the binary's path. Respects CARGO_TARGET_DIR;
# KUBERAY_BENCH_SERVER_BIN names a binary to use instead (no build).
bench_server_bin() {
  local target_dir
  if [[ -n ${KUBERAY_BENCH_SERVER_BIN:-} ]]; then
    [[ -x $KUBERAY_BENCH_SERVER_BIN ]] || bench_die "KUBERAY_BENCH_SERVER_BIN=$KUBERAY_BENCH_SERVER_BIN is not executable"
    echo "$KUBERAY_BENCH_SERVER_BIN"
    return
  fi
  bench_log "building the server (cargo build --release --locked -p kuberay-apiserver)"
  (cd "$REPO_DIR" && cargo build --release --locked -p kuberay-apiserver >&2)
  target_dir=$(cd "$REPO_DIR" && cargo metadata --format-version 1 --no-deps --locked |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  [[ -x $target_dir/release/kuberay-apiserver ]] || bench_die "no server binary in $target_dir/release"
  echo "$target_dir/release/kuberay-apiserver"
}

# A scratch directory, on /dev/shm when there is one (the store's fsyncs would dominate on disk).
bench_tmpdir() {
  local base=/dev/shm
  [[ -d $base && -w $base ]] || base=${TMPDIR:-/tmp}
  mktemp -d "$base/kuberay-bench.XXXXXX"
}

bench_alive() { # pid: running, not a zombie
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

bench_stop() { # pid: SIGTERM, then SIGKILL after 10 s
  local pid=$1 i
  [[ -n $pid ]] && bench_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    bench_alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# bench_start_server BIN LOG ARGS...: starts the server on free loopback ports (port 0, read back
# from its log); sets SERVER_PID, GRPC_ADDR, HTTP_ADDR and, with --embedded-kube-listen, KUBE_ADDR;
# returns once /healthz answers.
bench_start_server() {
  local bin=$1 logfile=$2 i plain
  shift 2
  RUST_LOG=${RUST_LOG:-warn,kuberay_apiserver=info} NO_COLOR=1 "$bin" \
    --rpcPortFlag 127.0.0.1:0 --httpPortFlag 127.0.0.1:0 "$@" >"$logfile" 2>&1 &
  SERVER_PID=$!
  GRPC_ADDR="" HTTP_ADDR="" KUBE_ADDR=""
  export KUBE_ADDR
  for ((i = 0; i < 600; i++)); do
    plain=$(sed 's/\x1b\[[0-9;]*m//g' "$logfile")
    GRPC_ADDR=$(grep -oE 'gRPC API on [0-9.]+:[0-9]+' <<<"$plain" | head -1 | awk '{print $4}' || true)
    HTTP_ADDR=$(grep -oE 'HTTP API on [0-9.]+:[0-9]+' <<<"$plain" | head -1 | awk '{print $4}' || true)
    KUBE_ADDR=$(grep -oE 'embedded Kubernetes API on http://[0-9.]+:[0-9]+' <<<"$plain" | head -1 |
      sed 's|.*http://||' || true)
    [[ -n $GRPC_ADDR && -n $HTTP_ADDR ]] && break
    bench_alive "$SERVER_PID" || { tail -20 "$logfile" >&2; bench_die "the server exited at start-up"; }
    sleep 0.1
  done
  [[ -n $GRPC_ADDR && -n $HTTP_ADDR ]] ||
    { tail -20 "$logfile" >&2; bench_die "the server did not log its addresses within 60s"; }
  for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null "http://$HTTP_ADDR/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  bench_die "the server does not answer /healthz"
}

# Prints the path of the trivial server (bench/trivial, outside the workspace), building it first.
bench_trivial() {
  local target=$BENCH_CACHE/trivial-target
  bench_log "building the trivial server (bench/trivial, release)"
  CARGO_TARGET_DIR=$target cargo build --release --locked --quiet \
    --manifest-path "$BENCH_DIR/trivial/Cargo.toml" >&2
  echo "$target/release/kuberay-bench-trivial"
}
