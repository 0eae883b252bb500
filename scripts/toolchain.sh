#!/usr/bin/env bash
# Build the end-to-end toolchain from Go modules: the Pulumi CLI and its Python language host, the
# pulumi-kubernetes provider plugin, kube-apiserver/controller-manager/scheduler/kubectl, etcd and
# kwok. Everything lands in a cache keyed by the pinned versions, outside the repository:
#
#   ${KEXPOSE_TOOLCHAIN_DIR:-~/.cache/kexpose/toolchain}/<key>/bin        the binaries
#   .../<key>/pulumi-home                                                 PULUMI_HOME (plugin cache)
#   .../<key>/share/kwok-stages.yaml                                      kwok's default stages
#   .../<key>/env.sh, env.json                                            what tests need to find it
#   ${KEXPOSE_GO_CACHE:-~/.cache/kexpose/go}/{mod,build}                  Go's module and build caches
#
# Usage:
#   scripts/toolchain.sh                 build what is missing (a no-op when everything is there)
#   scripts/toolchain.sh STEP...         build only these steps (etcd k8s kwok pulumi pyhost provider)
#   scripts/toolchain.sh --force STEP... rebuild these steps even if their stamp is there
#   scripts/toolchain.sh --print-env     print `export` lines for the built toolchain (fails if absent)
#   scripts/toolchain.sh --print-env-json  the same as JSON (what tests/e2e reads)
#
# Why wrapper modules: `go install pkg@version` refuses modules with replace directives (pulumi,
# etcd, kubernetes all have them), so each tool is built from a throw-away module that requires
# it, copies the tool's own non-local replace lines (step "R" of the recipe) and builds the package.
set -euo pipefail

# ---- pinned versions ---------------------------------------------------------------------------
# The Python SDK the project uses is pulumi 3.272.0, but the module proxy here refuses
# github.com/pulumi/pulumi/pkg/v3@v3.272.0 (403 "This module version is not available"); the
# nearest served pkg/v3 is v3.274.0. A CLI newer than the SDK is the direction Pulumi supports.
PULUMI_VERSION=v3.274.0
# The Python language host is its own module (sdk/python/cmd/pulumi-language-python/v3) since
# pulumi v3.80.0 and is never tagged; the proxy here serves none of its pseudo-versions. Before the
# split it lived inside sdk/v3, and sdk/v3@v3.68.0 is the newest such version the proxy serves.
# The 3.274 CLI falls back for the RPCs this host lacks (Handshake, GetRequiredPackages, ...).
PYHOST_SDK_VERSION=v3.68.0
# pulumi-kubernetes tags only vX and sdk/vX, so provider/v4 exists only as pseudo-versions; the
# only one the proxy serves is the commit of the v4.25.0 release (tag v4.25.0 = f47bc2d6f199).
K8S_PROVIDER_MODVERSION=v4.0.0-20260115033456-f47bc2d6f199
K8S_PROVIDER_VERSION=4.25.0
K8S_PROVIDER_SDK_VERSION=v4.25.0
# The Python SDK pulumi-kubernetes asks the engine for the plugin version it was generated with
# (4.34.2 in the project venv). The plugin cache matches versions exactly, so the provider is also
# installed under these versions. Set to "" to install it only under its true version.
K8S_PROVIDER_ALIASES=${KEXPOSE_K8S_PROVIDER_ALIASES-4.34.2}
KUBE_VERSION=v1.36.3
KUBE_STAGING_VERSION=v0.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
# Bump when the build recipe changes in a way that changes the binaries.
RECIPE=1

ALL_STEPS=(etcd kwok k8s pulumi pyhost provider)

# ---- locations ---------------------------------------------------------------------------------
GO=${GO:-go}
command -v "$GO" >/dev/null || { echo "toolchain: no 'go' on PATH (need Go >= 1.26)" >&2; exit 2; }
GO_VERSION=$("$GO" env GOVERSION)
TOOLCHAIN_DIR=${KEXPOSE_TOOLCHAIN_DIR:-$HOME/.cache/kexpose/toolchain}
GO_CACHE_DIR=${KEXPOSE_GO_CACHE:-$HOME/.cache/kexpose/go}
KEY="pulumi-${PULUMI_VERSION#v}_pyhost-${PYHOST_SDK_VERSION#v}_k8sprov-${K8S_PROVIDER_VERSION}_kube-${KUBE_VERSION#v}_etcd-${ETCD_VERSION#v}_kwok-${KWOK_VERSION#v}_${GO_VERSION}_r${RECIPE}"
ROOT="$TOOLCHAIN_DIR/$KEY"
BIN="$ROOT/bin"
SHARE="$ROOT/share"
STAMPS="$ROOT/stamps"
WORK="$ROOT/work"
PULUMI_HOME_DIR="$ROOT/pulumi-home"

export GOMODCACHE="$GO_CACHE_DIR/mod"
export GOCACHE="$GO_CACHE_DIR/build"
export GOTOOLCHAIN=local    # never switch toolchains behind our back; fail loudly instead
export CGO_ENABLED=0        # every official build of these tools is static
export GOFLAGS="-modcacherw"  # lets `rm -rf` clean the module cache; no other global flags
export GOWORK=off
export GOPATH="$GO_CACHE_DIR/path"  # keep ~/go untouched

# ---- output helpers ----------------------------------------------------------------------------
log() { printf 'toolchain: %s\n' "$*" >&2; }
die() { printf 'toolchain: ERROR: %s\n' "$*" >&2; exit 1; }
human() { du -sh "$1" 2>/dev/null | cut -f1; }
# logged CMD...: run CMD with its (chatty) output in the step's log; show the log's tail on failure.
STEP_LOG=/dev/null
logged() {
    local rc=0
    "$@" >>"$STEP_LOG" 2>&1 || rc=$?
    if ((rc)); then
        tail -n 40 "$STEP_LOG" >&2
        log "(full log: $STEP_LOG)"
    fi
    return "$rc"
}

write_env() {
    local path_line="$BIN"
    cat >"$ROOT/env.sh.tmp" <<EOF
# Generated by scripts/toolchain.sh; source it to use the e2e toolchain.
export KEXPOSE_TOOLCHAIN_ROOT='$ROOT'
export KEXPOSE_TOOLCHAIN_BIN='$BIN'
export KEXPOSE_KWOK_STAGES='$SHARE/kwok-stages.yaml'
export PATH='$path_line':"\$PATH"
export PULUMI_HOME='$PULUMI_HOME_DIR'
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_IGNORE_AMBIENT_PLUGINS=true
export PULUMI_K8S_PROVIDER_VERSION='$K8S_PROVIDER_VERSION'
export PULUMI_K8S_PROVIDER_ALIASES='$K8S_PROVIDER_ALIASES'
export KEXPOSE_PULUMI_VERSION='${PULUMI_VERSION#v}'
export KEXPOSE_KUBE_VERSION='$KUBE_VERSION'
EOF
    mv "$ROOT/env.sh.tmp" "$ROOT/env.sh"
    python3 - "$ROOT" "$BIN" "$SHARE" "$PULUMI_HOME_DIR" "$K8S_PROVIDER_VERSION" "$K8S_PROVIDER_ALIASES" \
        "${PULUMI_VERSION#v}" "$KUBE_VERSION" "${ETCD_VERSION#v}" "${KWOK_VERSION#v}" "${PYHOST_SDK_VERSION#v}" <<'EOF'
import json, sys
root, bindir, share, home, prov, aliases, pulumi, kube, etcd, kwok, pyhost = sys.argv[1:]
doc = {
    "root": root, "bin": bindir, "kwok_stages": f"{share}/kwok-stages.yaml", "pulumi_home": home,
    "versions": {"pulumi": pulumi, "pulumi_language_python_from_sdk": pyhost,
                 "kubernetes_provider": prov, "kubernetes_provider_aliases": aliases.split(),
                 "kubernetes": kube, "etcd": etcd, "kwok": kwok},
}
with open(f"{root}/env.json.tmp", "w") as f:
    json.dump(doc, f, indent=2)
EOF
    mv "$ROOT/env.json.tmp" "$ROOT/env.json"
}

require_built() {
    local s
    for s in "${ALL_STEPS[@]}"; do
        [[ -f "$STAMPS/$s" ]] || die "toolchain not built: step '$s' missing under $ROOT (run scripts/toolchain.sh)"
    done
    [[ -f "$ROOT/env.json" ]] || die "toolchain not built: $ROOT/env.json missing (run scripts/toolchain.sh)"
}

# ---- Go helpers --------------------------------------------------------------------------------
# JSON field of `go mod download -json mod@ver` (outside any module).
mod_field() {
    local out
    out=$(cd "$WORK" && "$GO" mod download -json "$1" 2>&1) || true
    python3 -c '
import json, sys
raw, field = sys.argv[1], sys.argv[2]
try:
    d = json.loads(raw)
except ValueError:
    sys.exit("cannot read go mod download output: " + raw[:400])
if d.get("Error"):
    sys.exit(d["Error"])
print(d.get(field, ""))' "$out" "$2"
}

# Non-local replace directives of a go.mod, as old[@v]=new@v (step "R" of the recipe).
nonlocal_replaces() {
    awk '
    /^replace[ \t]*\($/ { inblock = 1; next }
    inblock && /^\)/ { inblock = 0; next }
    (inblock || /^replace[ \t]/) && /=>/ {
        line = $0; sub(/^replace[ \t]+/, "", line); split(line, a, "=>")
        split(a[1], l, " "); split(a[2], r, " ")
        if (r[1] ~ /^[.\/]/) next
        o = l[1]; if (l[2] != "") o = o "@" l[2]
        n = r[1]; if (r[2] != "") n = n "@" r[2]
        print o "=" n
    }' "$1" | sort -u
}

# new_wrapper NAME: a fresh wrapper module directory, printed on stdout.
new_wrapper() {
    local dir="$WORK/$1"
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && "$GO" mod init "local.invalid/kexpose-$1" >/dev/null 2>&1)
    echo "$dir"
}

# copy_replaces DIR GOMOD...: apply the non-local replaces of the given go.mod files to DIR.
copy_replaces() {
    local dir=$1; shift
    local gomod rp
    for gomod in "$@"; do nonlocal_replaces "$gomod"; done | sort -u | while read -r rp; do
        log "  replace $rp"
        (cd "$dir" && "$GO" mod edit -replace="$rp")
    done
}

# ---- steps -------------------------------------------------------------------------------------
step_etcd() {
    local w gomod
    gomod=$(mod_field "go.etcd.io/etcd/server/v3@$ETCD_VERSION" GoMod) || die "etcd $ETCD_VERSION not served: $gomod"
    w=$(new_wrapper etcd)
    copy_replaces "$w" "$gomod"
    (cd "$w" && logged "$GO" get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION") || die "go get etcd server $ETCD_VERSION failed"
    (cd "$w" && logged "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3) \
        || die "building etcd failed"
    "$BIN/etcd" --version | head -1 >&2
}

step_kwok() {
    local w dir f
    w=$(new_wrapper kwok)
    # kwok has no replace directives; a wrapper keeps its go.sum out of the global GOPATH/bin flow.
    (cd "$w" && logged "$GO" get -tool "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") || die "go get kwok $KWOK_VERSION failed"
    (cd "$w" && logged "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok) || die "building kwok failed"
    # kwok alone runs no stages: kwokctl injects its defaults. Ship the same "fast" stages.
    dir=$(cd "$w" && "$GO" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
    mkdir -p "$SHARE"
    for f in stage/node/fast/node-initialize.yaml stage/node/heartbeat/node-heartbeat.yaml \
             stage/pod/fast/pod-ready.yaml stage/pod/fast/pod-complete.yaml stage/pod/fast/pod-delete.yaml; do
        [[ -f "$dir/kustomize/$f" ]] || die "kwok $KWOK_VERSION has no kustomize/$f"
        cat "$dir/kustomize/$f"; echo '---'
    done >"$SHARE/kwok-stages.yaml"
    "$BIN/kwok" --version 2>&1 | head -1 >&2 || true
}

step_k8s() {
    local w gomod minor ldf p m c date
    gomod=$(mod_field "k8s.io/kubernetes@$KUBE_VERSION" GoMod) || die "k8s.io/kubernetes $KUBE_VERSION not served: $gomod"
    w=$(new_wrapper k8s)
    # Every staging module is required at v0.0.0 and replaced by ./staging/src/...; point each
    # one at its published version instead (generated from the real go.mod, not a copied list).
    awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod" | while read -r m; do
        (cd "$w" && "$GO" mod edit -replace="$m=$m@$KUBE_STAGING_VERSION")
    done
    log "  $(grep -c '=> ./staging' "$gomod") staging modules pinned at $KUBE_STAGING_VERSION"
    copy_replaces "$w" "$gomod"
    (cd "$w" && "$GO" mod edit -godebug=default=go1.26)
    (cd "$w" && logged "$GO" get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" \
        "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBE_VERSION" \
        "k8s.io/kubernetes/cmd/kube-scheduler@$KUBE_VERSION" \
        "k8s.io/kubernetes/cmd/kubectl@$KUBE_VERSION") || die "go get kubernetes $KUBE_VERSION failed"
    # Without these, /version says v0.0.0-master and pulumi-kubernetes refuses the cluster
    # ("minimum supported cluster version is v1.13. found v0.0").
    minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
    date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    ldf="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldf="$ldf -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        ldf="$ldf -X $p.gitTreeState=clean -X $p.buildDate=$date"
    done
    # One `go build` for all four so the shared packages compile once and both cores stay busy.
    (cd "$w" && logged "$GO" build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldf" -o "$BIN/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl) || die "building kubernetes failed"
    for c in kube-apiserver kube-controller-manager kube-scheduler; do
        "$BIN/$c" --version | grep -q "Kubernetes $KUBE_VERSION" || die "$c does not report $KUBE_VERSION"
    done
    "$BIN/kube-apiserver" --version >&2
}

step_pulumi() {
    local w pkgmod sdkmod sdkdir ldf
    pkgmod=$(mod_field "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" GoMod) \
        || die "pulumi pkg/v3 $PULUMI_VERSION not served: $pkgmod"
    sdkmod=$(mod_field "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" GoMod) \
        || die "pulumi sdk/v3 $PULUMI_VERSION not served: $sdkmod"
    w=$(new_wrapper pulumi)
    copy_replaces "$w" "$pkgmod" "$sdkmod"
    (cd "$w" && logged "$GO" get "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" \
        && logged "$GO" get -tool "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_VERSION") \
        || die "go get pulumi $PULUMI_VERSION failed"
    # pkg and sdk must move in lockstep; MVS could pull one away from the other.
    [[ "$(cd "$w" && "$GO" list -m -f '{{.Version}}' github.com/pulumi/pulumi/sdk/v3)" == "$PULUMI_VERSION" ]] \
        || die "pulumi sdk/v3 drifted away from $PULUMI_VERSION in the wrapper"
    ldf="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
    (cd "$w" && logged "$GO" build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldf" -o "$BIN/pulumi" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) || die "building pulumi failed"
    # The language host runs this script with the program's Python; take it from the CLI's release.
    sdkdir=$(cd "$w" && "$GO" list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
    install -m 0755 "$sdkdir/python/cmd/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
    "$BIN/pulumi" version >&2
}

step_pyhost() {
    local w sdkmod ldf
    # Evidence for the report: the real module is refused by the proxy.
    if (cd "$WORK" && "$GO" list -m "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3@latest" >/dev/null 2>&1); then
        log "  note: the proxy now serves pulumi-language-python/v3; consider switching to it"
    fi
    sdkmod=$(mod_field "github.com/pulumi/pulumi/sdk/v3@$PYHOST_SDK_VERSION" GoMod) \
        || die "pulumi sdk/v3 $PYHOST_SDK_VERSION not served: $sdkmod"
    w=$(new_wrapper pyhost)
    copy_replaces "$w" "$sdkmod"
    (cd "$w" && logged "$GO" get -tool "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python@$PYHOST_SDK_VERSION") \
        || die "go get pulumi-language-python (sdk/v3 $PYHOST_SDK_VERSION) failed"
    ldf="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PYHOST_SDK_VERSION"
    (cd "$w" && logged "$GO" build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldf" -o "$BIN/pulumi-language-python" \
        github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python) || die "building pulumi-language-python failed"
}

step_provider() {
    local src pk v
    src=$(mod_field "github.com/pulumi/pulumi-kubernetes/provider/v4@$K8S_PROVIDER_MODVERSION" Dir) \
        || die "pulumi-kubernetes provider $K8S_PROVIDER_MODVERSION not served: $src"
    [[ -x "$BIN/pulumi" ]] || die "the provider step needs the pulumi step first (plugin install)"
    # The module is the main module here: its go.mod pins the pulumi pkg/sdk it was released with.
    pk="$WORK/provider"
    rm -rf "$pk" && cp -r "$src" "$pk" && chmod -R u+w "$pk"
    nonlocal_replaces "$pk/go.mod" | sed 's/^/toolchain:   provider replace (kept) /' >&2
    # provider/go.mod replaces sdk/v4 with ../sdk (not in the zip): use the released sdk/v4.
    (cd "$pk" && "$GO" mod edit -dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4 \
        && logged "$GO" get "github.com/pulumi/pulumi-kubernetes/sdk/v4@$K8S_PROVIDER_SDK_VERSION") \
        || die "pinning pulumi-kubernetes sdk/v4 $K8S_PROVIDER_SDK_VERSION failed"
    [[ "$(cd "$pk" && "$GO" list -m -f '{{.Version}}' github.com/pulumi/pulumi/pkg/v3)" == \
       "$(cd "$pk" && "$GO" list -m -f '{{.Version}}' github.com/pulumi/pulumi/sdk/v3)" ]] \
        || die "pulumi pkg/v3 and sdk/v3 differ in the provider build"
    # schema-embed.json and terraform-mapping-embed.json are gitignored and generated by the
    # provider's own `go generate` (VERSION=... go run ./generate.go), as its Makefile does.
    (cd "$pk/cmd/pulumi-resource-kubernetes" && VERSION=$K8S_PROVIDER_VERSION GOFLAGS="$GOFLAGS -mod=mod" logged "$GO" generate ./main.go) \
        || die "go generate for the provider's embed schema failed"
    [[ -s "$pk/cmd/pulumi-resource-kubernetes/schema-embed.json" ]] || die "schema-embed.json was not generated"
    (cd "$pk" && logged "$GO" build -mod=mod -trimpath \
        -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=v$K8S_PROVIDER_VERSION" \
        -o "$BIN/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes) || die "building the provider failed"
    # Install into the plugin cache (exact-version lookup) under its true version and aliases.
    mkdir -p "$PULUMI_HOME_DIR"
    for v in $K8S_PROVIDER_VERSION $K8S_PROVIDER_ALIASES; do
        PULUMI_HOME="$PULUMI_HOME_DIR" PULUMI_SKIP_UPDATE_CHECK=true \
            logged "$BIN/pulumi" plugin install resource kubernetes "$v" --file "$BIN/pulumi-resource-kubernetes" --reinstall \
            || die "pulumi plugin install resource kubernetes $v failed"
    done
    PULUMI_HOME="$PULUMI_HOME_DIR" PULUMI_SKIP_UPDATE_CHECK=true "$BIN/pulumi" plugin ls >&2
}

# ---- driver ------------------------------------------------------------------------------------
main() {
    local force=0 steps=() s t0 t1 total0 mod0 mod1
    while (($#)); do
        case $1 in
            --print-env) require_built; cat "$ROOT/env.sh"; return 0 ;;
            --print-env-json) require_built; cat "$ROOT/env.json"; return 0 ;;
            --root) echo "$ROOT"; return 0 ;;
            --force) force=1 ;;
            -h|--help) sed -n '2,25p' "$0"; return 0 ;;
            -*) die "unknown option $1" ;;
            *) steps+=("$1") ;;
        esac
        shift
    done
    ((${#steps[@]})) || steps=("${ALL_STEPS[@]}")
    mkdir -p "$BIN" "$SHARE" "$STAMPS" "$WORK" "$GOMODCACHE" "$GOCACHE"
    log "root $ROOT ($GO_VERSION, GOMODCACHE=$GOMODCACHE, GOCACHE=$GOCACHE)"
    total0=$(date +%s)
    for s in "${steps[@]}"; do
        declare -F "step_$s" >/dev/null || die "unknown step '$s' (steps: ${ALL_STEPS[*]})"
        if ((!force)) && [[ -f "$STAMPS/$s" ]]; then
            log "$s: up to date ($(cat "$STAMPS/$s"))"
            continue
        fi
        rm -f "$STAMPS/$s"
        STEP_LOG="$WORK/$s.log"
        : >"$STEP_LOG"
        log "$s: building (log: $STEP_LOG)"
        mod0=$(du -sm "$GOMODCACHE" | cut -f1)
        t0=$(date +%s)
        "step_$s"
        t1=$(date +%s)
        mod1=$(du -sm "$GOMODCACHE" | cut -f1)
        echo "built in $((t1 - t0))s, module cache +$((mod1 - mod0))M, $(date -u +%FT%TZ)" >"$STAMPS/$s"
        log "$s: done in $((t1 - t0))s (module cache +$((mod1 - mod0))M)"
    done
    write_env
    log "binaries in $BIN:"
    for s in "$BIN"/*; do log "  $(basename "$s")  $(human "$s")"; done
    log "module cache $(human "$GOMODCACHE"), build cache $(human "$GOCACHE")"
    log "total $(( $(date +%s) - total0 ))s; env: source $ROOT/env.sh"
}

main "$@"
