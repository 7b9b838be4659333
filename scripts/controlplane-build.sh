#!/usr/bin/env bash
# Build the binaries of a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, and kwok for simulated nodes) from Go modules served by the Go module proxy, ONCE, into a
# cache outside the repository. Idempotent: a stamp records what was built; a second call only prints the
# directory. Progress goes to stderr; the last line on stdout is the binary directory.
#
#   bash scripts/controlplane-build.sh                 # build (or reuse) the pinned versions
#   bash scripts/controlplane-build.sh --bin-dir DIR   # use your own binaries (checked, nothing is built)
#   KUBEBUILDER_ASSETS=DIR bash scripts/controlplane-build.sh   # same, envtest-style directory
#
# Only Go modules from the module proxy are built (never a git snapshot). `k8s.io/kubernetes` cannot be
# required on its own: its go.mod requires every staging module `k8s.io/<x>` at v0.0.0 and replaces it with
# ./staging/src/k8s.io/<x> (k8s.io/kubernetes go.mod @v1.34.0), and a dependency's replace directives are
# ignored, so the throwaway main module repeats them, pointing each to its published v0.<minor>.<patch>.
set -euo pipefail

K8S_VERSION="${KFPC_CP_K8S_VERSION:-v1.34.0}"   # = kindest/node pinned in fixtures/variants.yaml live.node_image
ETCD_VERSION="${KFPC_CP_ETCD_VERSION:-v3.6.4}"  # the etcd that Kubernetes v1.34.0 ships (cmd/kubeadm/app/constants: 3.6.4-0)
KWOK_VERSION="${KFPC_CP_KWOK_VERSION:-v0.7.0}"
JOBS="${KFPC_CP_BUILD_JOBS:-1}"                 # `go build -p`: the machine is shared, keep it low
ROOT="${KFPC_CP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kfp-conformance/controlplane}"
REQUIRED=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { echo "controlplane-build: $*" >&2; }
die() { log "$*"; exit 1; }

user_dir="${KFPC_CONTROLPLANE_BIN_DIR:-${KUBEBUILDER_ASSETS:-}}"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) [ $# -ge 2 ] || die "--bin-dir needs a directory"; user_dir="$2"; shift 2 ;;
    --print-dir) print_only=1; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (use --bin-dir DIR, --print-dir or no argument)" ;;
  esac
done

if [ -n "$user_dir" ]; then
  # A user directory needs at least etcd and kube-apiserver (an envtest KUBEBUILDER_ASSETS has just these
  # and kubectl); the provider says which optional component is missing when it starts.
  for b in etcd kube-apiserver; do
    [ -x "$user_dir/$b" ] || die "$user_dir/$b is missing or not executable (fix: point --bin-dir/KUBEBUILDER_ASSETS at a directory with etcd and kube-apiserver, or unset it to build them)"
  done
  log "using binaries from $user_dir (nothing built)"
  echo "$user_dir"
  exit 0
fi

BIN="$ROOT/$K8S_VERSION/bin"
STAMP="$BIN/.kfpc-built"
want="k8s=$K8S_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION"
if [ -f "$STAMP" ] && [ "$(head -n1 "$STAMP")" = "$want" ]; then
  ok=1; for b in "${REQUIRED[@]}"; do [ -x "$BIN/$b" ] || ok=0; done
  if [ "$ok" = 1 ]; then log "reusing $BIN ($want)"; echo "$BIN"; exit 0; fi
fi
[ -z "${print_only:-}" ] || die "no built control plane in $BIN (fix: run bash scripts/controlplane-build.sh)"

GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[ -x "$GO" ] || die "go is not installed (fix: install Go >= 1.24 or set GO=/path/to/go)"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
mkdir -p "$BIN"
LOGDIR="$ROOT/$K8S_VERSION/logs"; mkdir -p "$LOGDIR"
start_all=$(date +%s)

# Run a go command at the lowest priority, its output in a log; every 100 compiled packages is a progress line.
go_logged() {
  local name="$1"; shift
  local logf="$LOGDIR/$name.log"
  log "$name: go $* (log: $logf)"
  nice -n 19 "$GO" "$@" >"$logf" 2>&1 &
  local pid=$! n=0 last=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 20
    n=$(grep -c '^[a-z]' "$logf" 2>/dev/null || true)
    if [ "$((n / 100))" -gt "$((last / 100))" ]; then log "$name: $n packages so far ($(( $(date +%s) - start_all ))s)"; last=$n; fi
  done
  if ! wait "$pid"; then tail -n 25 "$logf" >&2; die "$name failed (full log: $logf)"; fi
}

# A throwaway main module (never in the repository) whose tools.go imports the commands, so `go mod tidy`
# resolves and checksums exactly their dependency graph.
module_dir() {  # name, then the import paths of the commands
  local dir="$ROOT/$K8S_VERSION/src-$1"; shift
  mkdir -p "$dir"
  { echo '//go:build tools'; echo; echo 'package tools'; echo; echo 'import ('
    for p in "$@"; do echo "	_ \"$p\""; done; echo ')'; } >"$dir/tools.go"
  echo "$dir"
}

# --- Kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler -------------------------------
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler)
missing=0; for b in "${k8s_bins[@]}"; do [ -x "$BIN/$b" ] || missing=1; done
if [ "$missing" = 1 ]; then
  t0=$(date +%s)
  dir=$(module_dir k8s k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
  log "kubernetes $K8S_VERSION: downloading k8s.io/kubernetes from the module proxy"
  gomod=$(cd "$dir" && GOFLAGS= "$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [ -f "$gomod" ] || die "cannot download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy (fix: check GOPROXY=$("$GO" env GOPROXY))"
  staging_version="v0.${K8S_VERSION#v1.}"
  { echo "module kfpc.local/controlplane-k8s"; echo; echo "go 1.24.0"; echo
    echo "require k8s.io/kubernetes $K8S_VERSION"; echo; echo "replace ("
    # every `k8s.io/<x> => ./staging/src/k8s.io/<x>` of k8s.io/kubernetes's own go.mod
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*$#\1#p' "$gomod" | sort -u |
      while read -r m; do echo "	$m => $m $staging_version"; done
    echo ")"; } >"$dir/go.mod"
  log "kubernetes: $(grep -c ' => ' "$dir/go.mod") staging modules replaced by their $staging_version"
  (cd "$dir" && go_logged k8s-tidy mod tidy)
  # The version the binaries report (/version, kubectl version), as hack/lib/version.sh sets it.
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$dir" && go_logged k8s-build build -p "$JOBS" -v -trimpath -ldflags "$ldflags" -o "$BIN/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
  log "kubernetes: built in $(( $(date +%s) - t0 ))s"
fi

# --- etcd: etcdmain.Main is the whole of etcd's own main (go.etcd.io/etcd/v3 main.go @v3.6.4) -------------
if [ ! -x "$BIN/etcd" ]; then
  t0=$(date +%s)
  dir="$ROOT/$K8S_VERSION/src-etcd"; mkdir -p "$dir"
  printf 'module kfpc.local/controlplane-etcd\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' >"$dir/main.go"
  (cd "$dir" && go_logged etcd-tidy mod tidy)
  (cd "$dir" && go_logged etcd-build build -p "$JOBS" -v -trimpath -ldflags "-s -w" -o "$BIN/etcd" .)
  log "etcd: built in $(( $(date +%s) - t0 ))s"
fi

# --- kwok: fake nodes and pod status (sigs.k8s.io/kwok/cmd/kwok) -------------------------------------------
if [ ! -x "$BIN/kwok" ]; then
  t0=$(date +%s)
  dir=$(module_dir kwok sigs.k8s.io/kwok/cmd/kwok)
  printf 'module kfpc.local/controlplane-kwok\n\ngo 1.24.0\n\nrequire sigs.k8s.io/kwok %s\n' "$KWOK_VERSION" >"$dir/go.mod"
  (cd "$dir" && go_logged kwok-tidy mod tidy)
  (cd "$dir" && go_logged kwok-build build -p "$JOBS" -v -trimpath -ldflags "-s -w" -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok)
  log "kwok: built in $(( $(date +%s) - t0 ))s"
fi

for b in "${REQUIRED[@]}"; do [ -x "$BIN/$b" ] || die "$BIN/$b was not built"; done
{ echo "$want"; echo "go=$("$GO" env GOVERSION) built=$(date -u +%FT%TZ) seconds=$(( $(date +%s) - start_all ))"; } >"$STAMP"
log "done in $(( $(date +%s) - start_all ))s: $BIN"
echo "$BIN"
