# shellcheck shell=bash disable=SC2034
# lib.sh - shared settings and helpers of the local cluster harness (sourced by up, down, status, env, ...).
# The single place for paths, ports, versions and image names.
#
# Env overrides:
#   DBGS_CLUSTER_CACHE  build cache (apt downloads, k8s source tree, GOCACHE, binaries, images)
#                       [$HOME/.cache/debugsession-operator/cluster]
#   DBGS_CLUSTER_STATE  runtime state (pki, etcd data, containerd, kubelet, logs, pids) [/var/tmp/debugsession-e2e]
#   SIM_NODES           number of simulated nodes sim-node-<i> (up only)            [0]

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

CACHE=${DBGS_CLUSTER_CACHE:-$HOME/.cache/debugsession-operator/cluster}
STATE=${DBGS_CLUSTER_STATE:-/var/tmp/debugsession-e2e}
CP_CACHE=$CACHE/cp          # debs src gocache bin gopath dl
NODE_CACHE=$CACHE/node      # bin images overlay
CP_DIR=$STATE/cp            # pki run log etcd *.kubeconfig
NODE_DIR=$STATE/node        # pki run log containerd kubelet cni

# --- Kubernetes (Debian bookworm source package) ---------------------------------------------
K8S_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
K8S_VERSION=v1.20.2
K8S_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
CP_BUILD_ID="$K8S_DEB_VERSION-p3"                                  # bump when patches/ldflags change
NODE_BUILD_ID="kubelet+kubectl-$K8S_VERSION-cgo0-nodockerwait-3"   # bump when patches/ldflags change

# --- ports / addresses (everything on 127.0.0.1 or the local pod bridge) ----------------------
ETCD_PORT=23791
ETCD_PEER_PORT=23801
APISERVER_PORT=26443
KCM_PORT=26257
SCHED_PORT=26259
KUBELET_PORT=10250
KUBELET_HEALTHZ_PORT=10248
API=https://127.0.0.1:$APISERVER_PORT
NODE_NAME=node-1
POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1           # first address of POD_CIDR, on the pod bridge (kubelet refuses loopback)
CNI_BRIDGE=dbgs-br0
SIM_NODE_PREFIX=sim-node-
REAL_NODE_LABEL=debugsession.dev/real-node
SIM_NODE_LABEL=debugsession.dev/simulated
SIM_NODE_TAINT="debugsession.dev/simulated=true:NoSchedule"

# --- images: built locally from Debian packages, named after the real upstream versions --------
# pause: build/pause/Makefile TAG in the v1.20.2 tree; busybox: bookworm busybox-static 1:1.35.0-4;
# nginx: bookworm nginx 1.22.1-9. build-images.sh checks these against the sources it uses.
IMAGE_REGISTRY=registry.local
PAUSE_VERSION=3.4
BUSYBOX_VERSION=1.35.0
NGINX_VERSION=1.22.1
PAUSE_IMAGE=$IMAGE_REGISTRY/pause:$PAUSE_VERSION
BUSYBOX_IMAGE=$IMAGE_REGISTRY/busybox:$BUSYBOX_VERSION
NGINX_IMAGE=$IMAGE_REGISTRY/nginx:$NGINX_VERSION
IMG_DIR=$NODE_CACHE/images   # <name>-<version>.oci.tar

# --- client side ------------------------------------------------------------------------------
KUBECONFIG=$CP_DIR/admin.kubeconfig
KUBECACHEDIR=$STATE/kube-cache   # own discovery cache: ~/.kube/cache goes stale across re-created clusters
export KUBECONFIG KUBECACHEDIR
CTR_SOCK=$NODE_DIR/containerd/containerd.sock
PKI=$CP_DIR/pki
CURL_ADMIN=(--cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")

# kubectl: the installed one if any, else the v1.20.2 one built into the cache
if [ -z "${KUBECTL:-}" ]; then
  KUBECTL=$(command -v kubectl 2>/dev/null || echo "$NODE_CACHE/bin/kubectl")
fi
kube() { "$KUBECTL" --kubeconfig "$KUBECONFIG" --cache-dir "$KUBECACHEDIR" "$@"; }

# --- logging / timing -------------------------------------------------------------------------
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
log() { echo "[$(date +%T)] $*"; }
die() { echo "ERROR: $*" >&2; exit 1; }
PHASES=()
phase_end() { PHASES+=("$(printf '%-22s %6s ms' "$1" "$(ms_since "$2")")"); log "done $1 ($(ms_since "$2") ms)"; }

# --- processes started by up: <rundir>/<name>.pid + <name>.cmd (the executable) ---------------
# ours RUNDIR NAME -> prints the PID if it is alive and still runs the recorded executable
ours() {
  local f=$1/$2.pid pid; [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$(cat "$1/$2.cmd" 2>/dev/null)" && echo "$pid"
}
# stop_ours RUNDIR TIMEOUT_S NAME... : TERM them together, wait, then KILL
stop_ours() {
  local run=$1 to=$2; shift 2
  local pids=() n p alive
  for n in "$@"; do
    if p=$(ours "$run" "$n"); then kill -TERM "$p" 2>/dev/null; pids+=("$p"); echo "stopping $n ($p)"; fi
    rm -f "$run/$n.pid"
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for _ in $(seq 1 $((to * 5))); do
    alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0; sleep 0.2
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  return 0
}
