# shellcheck shell=bash disable=SC2153 # e2e/lib.sh, sourced before, sets NODE_IP, NODE_BIN, ...
# Sourced by e2e/up and e2e/down (after e2e/lib.sh): the node of `e2e/up --pods` (this machine,
# with pods in network namespaces on a bridge), what it changes on the host, and how that is undone.
#
# What `e2e/up --pods` changes outside e2e/.run, all undone by e2e/down:
#   - the bridge $BRIDGE ($NODE_IP/24) and the routes 198.19.0.0/16 dev $BRIDGE, unreachable
#     198.18.0.0/16 (so that no Service or pod address is ever sent to the default gateway);
#   - iptables chains: KUBERAY-E2E-* (ours: a guard that drops anything forwarded between the
#     bridge and another interface, pods' packets to the host's other addresses, and kube-apiserver's
#     port on interfaces other than lo and the bridge), KUBE-* (kube-proxy, kubelet), CNI-* (portmap),
#     and the iptables-nft tables they needed;
#   - sysctls (net.ipv4.ip_forward, route_localnet, bridge-nf-call-*, and those kubelet sets:
#     vm.overcommit_memory, kernel.panic, ...), restored to the values saved before;
#   - cgroups /sys/fs/cgroup/*/$CGROUP_ROOT (kubelet's cgroupRoot);
#   - kubelet's /var/log/containers/*.log links and /var/lib/kubelet/device-plugins/kubelet.sock,
#     libcni's /var/lib/cni/results/{kuberay-e2e,cni-loopback}-*, the shims' sockets in
#     /run/containerd/s (and those directories, when they were not there before and are empty).
# Packets go only to loopback and to the pods' namespaces: kubelet's node address is the bridge's,
# CoreDNS has no upstream, pods' resolv.conf names only CoreDNS, containerd pulls through a proxy
# on a closed loopback port (any pull fails at once), and there is no masquerading to the outside.

NODE_DIR=$RUN_DIR/node
CNI_BIN_DIR=/usr/lib/cni
COREDNS_READY_PORT=18181
# Sysctls the node changes (ours, kube-proxy's, kubelet's), saved by node_sysctl_save.
NODE_SYSCTLS=(
  net.ipv4.ip_forward
  net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables
  vm.overcommit_memory
  vm.panic_on_oom
  kernel.panic
  kernel.panic_on_oops
  kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes
)
# Host directories that only the node's components create; removed if absent before and empty.
# (kubelet's device-plugin socket is always /var/lib/kubelet/device-plugins/kubelet.sock, whatever
# its --root-dir.)
NODE_HOST_DIRS=(/var/log/containers /var/lib/cni/results /var/lib/cni /run/containerd/s /run/containerd
  /var/lib/kubelet/device-plugins /var/lib/kubelet)

# Installs, with apt-get, the Debian packages the node needs that are missing.
node_packages() {
  local -A need=(
    [containerd]=containerd [containerd-shim-runc-v2]=containerd [ctr]=containerd
    [runc]=runc [iptables]=iptables [ip6tables]=iptables [ip]=iproute2 [conntrack]=conntrack
    [buildah]=buildah [openssl]=openssl [curl]=curl [gcc]=gcc [dpkg-deb]=dpkg
    [mount]=mount [nsenter]=util-linux [nft]=nftables
  )
  local cmd missing=()
  for cmd in "${!need[@]}"; do
    command -v "$cmd" >/dev/null || missing+=("${need[$cmd]}")
  done
  local plugin
  for plugin in bridge host-local loopback portmap; do
    [[ -x $CNI_BIN_DIR/$plugin ]] || missing+=(containernetworking-plugins)
  done
  # A static libc, for the pause program (gcc -static).
  [[ -e /usr/lib/x86_64-linux-gnu/libc.a || -e /usr/lib/$(uname -m)-linux-gnu/libc.a ]] || missing+=(libc6-dev)
  ((${#missing[@]})) || return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  command -v apt-get >/dev/null || e2e_die "missing ${missing[*]}, and no apt-get to install them"
  e2e_log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; } ||
    e2e_die "apt-get install ${missing[*]} failed"
}

# Fills @NAME@ in template e2e/node/$1 with the value of shell variable NAME, into $NODE_DIR/$2.
node_render() {
  local template=$E2E_DIR/node/$1 out=$NODE_DIR/$2 text name
  text=$(<"$template")
  while [[ $text =~ @([A-Z_]+)@ ]]; do
    name=${BASH_REMATCH[1]}
    [[ -v $name ]] || e2e_die "$template: no value for @$name@"
    text=${text//@$name@/${!name}}
  done
  mkdir -p "$(dirname "$out")"
  printf '%s\n' "$text" >"$out"
}

node_sysctl_save() {
  [[ -f $NODE_DIR/sysctl.saved ]] && return 0
  local key
  for key in "${NODE_SYSCTLS[@]}"; do
    printf '%s %s\n' "$key" "$(sysctl -n "$key" 2>/dev/null || echo -)"
  done >"$NODE_DIR/sysctl.saved"
}

node_sysctl_restore() {
  [[ -f $NODE_DIR/sysctl.saved ]] || return 0
  local key value
  while read -r key value; do
    [[ $value == - || $(sysctl -n "$key" 2>/dev/null) == "$value" ]] && continue
    sysctl -q -w "$key=$value" || e2e_log "could not restore $key=$value"
  done <"$NODE_DIR/sysctl.saved"
}

# What is there before the node changes anything: iptables chains, nftables tables, host dirs.
node_record_host() {
  [[ -f $NODE_DIR/host.before ]] && return 0
  {
    local cmd table dir
    for cmd in iptables ip6tables; do
      for table in filter nat mangle raw; do
        # (KUBERAY-E2E-* chains are always ours, even left over from a run that was not taken down.)
        "$cmd" -w -t "$table" -S 2>/dev/null |
          awk -v c="$cmd" -v t="$table" '$1 == "-N" && $2 !~ /^KUBERAY-E2E-/ { print "chain", c, t, $2 }'
      done
    done
    if command -v nft >/dev/null; then
      nft list tables 2>/dev/null | awk '$1 == "table" { print "nft", $2, $3 }'
    fi
    for dir in "${NODE_HOST_DIRS[@]}"; do
      [[ -e $dir ]] && echo "dir $dir"
    done
  } >"$NODE_DIR/host.before.tmp"
  mv "$NODE_DIR/host.before.tmp" "$NODE_DIR/host.before"
}

# Whether line $1 was in the host record (a missing record counts as "nothing was there").
node_was_there() { [[ -f $NODE_DIR/host.before ]] && grep -qxF -- "$1" "$NODE_DIR/host.before"; }

# The bridge (the node's address exists before kube-apiserver advertises it and kubelet uses it),
# the routes, the sysctls, and the guard chains.
node_network_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${NODE_POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Service addresses and the rest of the pod range stay on this machine.
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
  ip route replace unreachable "$POD_CIDR"
  sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
  # Guards (mangle, so that they come before any filter rule of kube-proxy's):
  #   forwarded packets may only go from the bridge to the bridge;
  #   pods may open connections to no host address but the node's.
  iptables -w -t mangle -N KUBERAY-E2E-FORWARD 2>/dev/null || iptables -w -t mangle -F KUBERAY-E2E-FORWARD
  iptables -w -t mangle -A KUBERAY-E2E-FORWARD -i "$BRIDGE" -o "$BRIDGE" -j RETURN
  iptables -w -t mangle -A KUBERAY-E2E-FORWARD -i "$BRIDGE" -j DROP
  iptables -w -t mangle -A KUBERAY-E2E-FORWARD -o "$BRIDGE" -j DROP
  iptables -w -t mangle -C FORWARD -j KUBERAY-E2E-FORWARD 2>/dev/null ||
    iptables -w -t mangle -I FORWARD 1 -j KUBERAY-E2E-FORWARD
  iptables -w -t mangle -N KUBERAY-E2E-INPUT 2>/dev/null || iptables -w -t mangle -F KUBERAY-E2E-INPUT
  iptables -w -t mangle -A KUBERAY-E2E-INPUT -i lo -j RETURN
  # Replies to the host's own connections, e.g. from a pod behind a NodePort on 127.0.0.1 (by then
  # addressed back to 127.0.0.1).
  iptables -w -t mangle -A KUBERAY-E2E-INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  iptables -w -t mangle -A KUBERAY-E2E-INPUT -i "$BRIDGE" ! -d "$NODE_IP" -m addrtype --dst-type LOCAL -j DROP
  iptables -w -t mangle -A KUBERAY-E2E-INPUT -i "$BRIDGE" -j RETURN
  iptables -w -t mangle -C INPUT -j KUBERAY-E2E-INPUT 2>/dev/null ||
    iptables -w -t mangle -I INPUT 1 -j KUBERAY-E2E-INPUT
}

# kube-apiserver listens on all addresses (loopback for the kubeconfig, the bridge for pods):
# drop its port on every other interface.
node_guard_port() {
  iptables -w -t mangle -C KUBERAY-E2E-INPUT -p tcp --dport "$1" -j DROP 2>/dev/null ||
    iptables -w -t mangle -A KUBERAY-E2E-INPUT -p tcp --dport "$1" -j DROP
}

# A CA and a serving certificate for kube-apiserver as pods address it: through the `kubernetes`
# Service ($KUBERNETES_SERVICE_IP, kubernetes.default.svc...) or the node's address. kube-apiserver
# serves it (--tls-sni-cert-key) to connections to $NODE_IP and to those names; the envtest
# certificate (localhost, 127.0.0.1) stays the default, for the kubeconfig.
node_pki() {
  local dir=$RUN_DIR/pki-pods
  [[ -f $dir/apiserver.crt ]] && return 0
  mkdir -p "$dir"
  chmod 700 "$dir"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -days 30 -subj /CN=kuberay-e2e-pods-ca \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -new "${ec[@]}" -subj /CN=kube-apiserver \
    -keyout "$dir/apiserver.key" -out "$dir/apiserver.csr" 2>/dev/null
  openssl x509 -req -in "$dir/apiserver.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 30 -out "$dir/apiserver.crt" -extfile <(
      printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n'
      printf 'extendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
        "IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP,$(node_apiserver_names | sed 's/^/DNS:/' | paste -sd,)"
    ) 2>/dev/null
}

node_apiserver_names() {
  printf '%s\n' kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local
}

# containerd's snapshotter: $KUBERAY_E2E_SNAPSHOTTER if set, else overlayfs where an overlay mount
# works under e2e/.run, else native (which copies every layer: slower, more disk).
node_snapshotter() {
  if [[ -n ${KUBERAY_E2E_SNAPSHOTTER:-} ]]; then
    echo "$KUBERAY_E2E_SNAPSHOTTER"
    return
  fi
  local d=$RUN_DIR/containerd/overlay-test result=native
  mkdir -p "$d/lower" "$d/upper" "$d/work" "$d/merged"
  if mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>/dev/null; then
    umount "$d/merged"
    result=overlayfs
  fi
  rm -rf "$d"
  echo "$result"
}

# kubectl on the cluster.
# (Its discovery cache in e2e/.run, not ~/.kube/cache.)
node_kubectl() { "$NODE_BIN/kubectl" --kubeconfig "$RUN_DIR/kubeconfig" --cache-dir "$RUN_DIR/kube-cache" "$@"; }

# crictl on the node's containerd (its config: e2e/.run/node/crictl.yaml, written by e2e/up).
node_crictl() { "$NODE_BIN/crictl" --config "$NODE_DIR/crictl.yaml" "$@"; }

# PIDs of the containerd shims of our containerd (they outlive it).
node_shim_pids() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    tr '\0' ' ' <"$f" 2>/dev/null | grep -q -- "^[^ ]*containerd-shim[^ ]* .*-address $CONTAINERD_SOCK\( \|$\)" &&
      echo "$pid"
  done
  return 0
}

# The unix sockets that processes $@ listen on under /run/containerd/s/ (a killed shim leaves its
# socket file behind).
node_shim_sockets() {
  local pid inodes=()
  for pid; do
    mapfile -t -O "${#inodes[@]}" inodes < <(
      find "/proc/$pid/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n')
  done
  ((${#inodes[@]})) || return 0
  awk -v inodes="${inodes[*]}" '
    BEGIN { n = split(inodes, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
    ($7 in want) && $8 ~ /^\/run\/containerd\/s\// { print $8 }' /proc/net/unix | sort -u
}

# Kills every process in the node's cgroups (containers), and the shims, by PID.
node_kill_containers() {
  local pids round sockets
  # shellcheck disable=SC2046 # one PID a word
  mapfile -t sockets < <(node_shim_sockets $(node_shim_pids))
  for round in 1 2 3 4 5; do
    pids=$( {
      node_shim_pids
      find /sys/fs/cgroup/*/"$CGROUP_ROOT" /sys/fs/cgroup/"$CGROUP_ROOT" -name cgroup.procs \
        -exec cat {} + 2>/dev/null || true
    } | sort -u)
    if [[ -z $pids ]]; then
      ((${#sockets[@]} == 0)) || rm -f "${sockets[@]}"
      return 0
    fi
    ((round == 1)) && e2e_log "killing the node's leftover container processes and shims: ${pids//$'\n'/ }"
    # shellcheck disable=SC2086 # one PID a word
    kill -KILL $pids 2>/dev/null || true
    sleep 0.5
  done
}

# Unmounts everything mounted under e2e/.run (kubelet's volumes, containerd's rootfs, shm and
# network-namespace mounts), deepest first.
node_unmount() {
  local mp pass mps
  for pass in 1 2 3; do
    mapfile -t mps < <(awk -v d="$RUN_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo |
      awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
    ((${#mps[@]})) || return 0
    for mp in "${mps[@]}"; do
      mp=$(printf '%b' "$mp") # mountinfo escapes spaces etc. as \040
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || e2e_log "could not unmount $mp"
    done
  done
}

# Removes the KUBE-*, CNI-* and KUBERAY-E2E-* iptables chains that were not there before (and
# every rule that jumps to them), then the iptables-nft tables that were not there before and are
# now empty.
node_iptables_down() {
  local cmd table line chain
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle raw; do
      local -A ours=()
      while read -r chain; do
        node_was_there "chain $cmd $table $chain" || ours[$chain]=1
      done < <("$cmd" -w -t "$table" -S 2>/dev/null |
        awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-|KUBERAY-E2E-)/ { print $2 }')
      ((${#ours[@]})) || continue
      # Rules in other chains that jump to ours.
      while read -r line; do
        # shellcheck disable=SC2086,SC2046 # the rule's words, quoted as iptables -S prints them
        eval "$cmd -w -t $table -D ${line#-A }" 2>/dev/null || true
      done < <("$cmd" -w -t "$table" -S 2>/dev/null | awk -v ours="${!ours[*]}" '
        BEGIN { n = split(ours, a, " "); for (i = 1; i <= n; i++) o[a[i]] = 1 }
        $1 == "-A" && !($2 in o) { for (i = 3; i < NF; i++) if (($i == "-j" || $i == "-g") && ($(i + 1) in o)) { print; break } }')
      for chain in "${!ours[@]}"; do "$cmd" -w -t "$table" -F "$chain" 2>/dev/null || true; done
      for chain in "${!ours[@]}"; do "$cmd" -w -t "$table" -X "$chain" 2>/dev/null || true; done
      unset ours
    done
  done
  command -v nft >/dev/null || return 0
  local family name
  while read -r family name; do
    node_was_there "nft $family $name" && continue
    case $family/$name in
      ip/filter | ip/nat | ip/mangle | ip/raw | ip6/filter | ip6/nat | ip6/mangle | ip6/raw)
        cmd=iptables
        [[ $family == ip6 ]] && cmd=ip6tables
        # Only when iptables-nft has nothing in it any more.
        if ! "$cmd" -w -t "$name" -S 2>/dev/null | grep -q '^-[AN] '; then
          nft delete table "$family" "$name" 2>/dev/null || true
        fi
        ;;
      ip/kube-proxy | ip6/kube-proxy) nft delete table "$family" "$name" 2>/dev/null || true ;;
    esac
  done < <(nft list tables 2>/dev/null | awk '$1 == "table" { print $2, $3 }')
}

node_network_down() {
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE" || e2e_log "could not delete the bridge $BRIDGE"
  fi
  ip route del "$SERVICE_CIDR" 2>/dev/null || true
  ip route del unreachable "$POD_CIDR" 2>/dev/null || true
  # The host ends of pods' veths went with their network namespaces (unmounted, their processes
  # gone).
}

node_cgroups_down() {
  local dir round left
  for round in 1 2 3 4 5 6 7 8 9 10; do
    left=false
    for dir in /sys/fs/cgroup/*/"$CGROUP_ROOT" /sys/fs/cgroup/"$CGROUP_ROOT"; do
      [[ -d $dir ]] || continue
      find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [[ -d $dir ]] && left=true
    done
    $left || return 0
    sleep 0.5
  done
  e2e_log "could not remove every cgroup named $CGROUP_ROOT under /sys/fs/cgroup"
}

node_host_files_down() {
  local link dir
  # kubelet's links to containers' logs (they point into e2e/.run).
  for link in /var/log/containers/*.log; do
    [[ -L $link && $(readlink "$link") == "$RUN_DIR"/* ]] && rm -f "$link"
  done
  # libcni's cache of our network's results, and of the loopback network of the same sandboxes
  # (CNI DEL, through `crictl rmp`, removes them; this is for pods that were killed instead).
  local result id
  for result in /var/lib/cni/results/kuberay-e2e-*; do
    [[ -e $result ]] || continue
    id=${result#/var/lib/cni/results/kuberay-e2e-}
    id=${id%-*}
    rm -f "$result" "/var/lib/cni/results/cni-loopback-$id-lo"
  done
  if ! node_was_there "dir /var/lib/kubelet/device-plugins"; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock
  fi
  for dir in "${NODE_HOST_DIRS[@]}"; do
    if [[ -d $dir ]] && ! node_was_there "dir $dir"; then
      rmdir "$dir" 2>/dev/null || true
    fi
  done
}
