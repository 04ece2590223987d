# Sourced by the e2e scripts: where things are, which versions, and small helpers.
# Versions come from the wrapper modules' go.mod files, so they are named in one place each:
#   e2e/go/go.mod       k8s.io/kubernetes (kube-apiserver), go.etcd.io/etcd/server/v3 (etcd),
#                       sigs.k8s.io/controller-runtime (envtest, used by cmd/control-plane)
#   e2e/kuberay/go.mod  github.com/ray-project/kuberay/ray-operator (operator and CRDs)
#   e2e/node/go.mod     k8s.io/kubernetes again (kube-scheduler, kubelet, kube-proxy; for `e2e/up --pods`;
#                       the same version as e2e/go/go.mod's, which e2e/build checks)
#   e2e/coredns/go.mod  github.com/coredns/coredns (CoreDNS with the plugins e2e/coredns/main.go names)
#   e2e/helm/go.mod     helm.sh/helm/v3 (helm, for the chart checks; `e2e/build helm`), and
#                       k8s.io/kubectl (kubectl, for them where none is installed; `e2e/build kubectl`)

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$E2E_DIR")
RUN_DIR=$E2E_DIR/.run
E2E_CACHE=${KUBERAY_E2E_CACHE:-$HOME/.cache/kuberay-apiserver-e2e}

e2e_log() { printf '%s e2e: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
e2e_die() { e2e_log "error: $*"; exit 1; }

# The version a go.mod requires of a module.
e2e_mod_version() {
  awk -v m="$2" '($1 == m || ($1 == "require" && $2 == m)) && $0 !~ /=>/ {
    for (i = 1; i <= NF; i++) if ($i ~ /^v[0-9]/) { print $i; exit }
  }' "$1"
}

# A short digest of some files' contents: a cache key that changes when they do.
e2e_digest() { (cd "$E2E_DIR" && cat "$@") | sha256sum | cut -c1-12; }

KUBERNETES_VERSION=$(e2e_mod_version "$E2E_DIR/go/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(e2e_mod_version "$E2E_DIR/go/go.mod" go.etcd.io/etcd/server/v3)
KUBERAY_VERSION=$(e2e_mod_version "$E2E_DIR/kuberay/go.mod" github.com/ray-project/kuberay/ray-operator)

# Build outputs, one directory per version (and per digest of the files that decide the build).
CONTROL_PLANE_BIN=$E2E_CACHE/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-$(e2e_digest go/go.mod go/go.sum)
HARNESS_BIN=$E2E_CACHE/control-plane-$(e2e_digest go/go.mod go/go.sum go/cmd/control-plane/main.go)
KUBERAY_DIR=$E2E_CACHE/kuberay-$KUBERAY_VERSION-$(e2e_digest kuberay/go.mod kuberay/go.sum)
# For `e2e/up --pods`: the node components, CoreDNS, and the images built here (pause, busybox).
NODE_KUBERNETES_VERSION=$(e2e_mod_version "$E2E_DIR/node/go.mod" k8s.io/kubernetes)
NODE_BIN=$E2E_CACHE/kubernetes-node-$NODE_KUBERNETES_VERSION-$(e2e_digest node/go.mod node/go.sum)
COREDNS_VERSION=$(e2e_mod_version "$E2E_DIR/coredns/go.mod" github.com/coredns/coredns)
COREDNS_BIN=$E2E_CACHE/coredns-$COREDNS_VERSION-$(e2e_digest coredns/go.mod coredns/go.sum coredns/main.go)
IMAGES_DIR=$E2E_CACHE/images-$(e2e_digest node/images.sh node/pause.c)
PAUSE_IMAGE=kuberay-e2e.local/pause:e2e
BUSYBOX_IMAGE=kuberay-e2e.local/busybox:e2e

# The node of `e2e/up --pods` is this machine; its pods live in network namespaces on a bridge.
# Every address the harness uses is loopback or one of these (RFC 2544 benchmarking ranges, used
# by nothing else here): pods 198.18.0.0/16 (this node 198.18.0.0/24, the bridge 198.18.0.1, which
# is also the node's address, kube-apiserver's advertised address and the DNS server), Services
# 198.19.0.0/16 (the `kubernetes` Service 198.19.0.1).
POD_CIDR=198.18.0.0/16
NODE_POD_CIDR=198.18.0.0/24
NODE_IP=198.18.0.1
SERVICE_CIDR=198.19.0.0/16
KUBERNETES_SERVICE_IP=198.19.0.1
DNS_IP=$NODE_IP
BRIDGE=kuberay-e2e
NODE_NAME=kuberay-e2e-node
CGROUP_ROOT=kuberay-e2e
CONTAINERD_SOCK=$RUN_DIR/containerd/containerd.sock
HELM_VERSION=$(e2e_mod_version "$E2E_DIR/helm/go.mod" helm.sh/helm/v3)
HELM_BIN=$E2E_CACHE/helm-$HELM_VERSION-$(e2e_digest helm/go.mod helm/go.sum)
KUBECTL_VERSION=$(e2e_mod_version "$E2E_DIR/helm/go.mod" k8s.io/kubectl)
KUBECTL_BIN=$E2E_CACHE/kubectl-$KUBECTL_VERSION-$(e2e_digest helm/go.mod helm/go.sum helm/cmd/kubectl/main.go)

# Whether PID $1 is alive and its command line mentions $2 (guards against reused PIDs).
e2e_alive() {
  local pid=$1 what=$2
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$what"
}

# Whether PID $1 (a child just started by this shell) is running: neither gone nor a zombie.
e2e_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# Sends SIGTERM to PID $1 (if it is still $2), waits up to $3 seconds, then sends SIGKILL.
e2e_stop_pid() {
  local pid=$1 what=$2 grace=$3 i
  e2e_alive "$pid" "$what" || return 0
  e2e_log "stopping $what (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do
    e2e_alive "$pid" "$what" || return 0
    sleep 0.1
  done
  e2e_log "$what (pid $pid) did not stop in ${grace}s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    e2e_alive "$pid" "$what" || return 0
    sleep 0.1
  done
}
