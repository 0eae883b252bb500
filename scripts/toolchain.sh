#!/usr/bin/env bash
# Build the end-to-end toolchain from Go modules: the Pulumi CLI and its Python language host, the
# pulumi-kubernetes provider plugin, kube-apiserver/controller-manager/scheduler/kubectl, etcd,
# kwok, the Gateway API conformance suite, Traefik and a cert-manager controller. Everything lands
# in a cache keyed by the pinned versions, outside the repository:
#
#   ${KEXPOSE_TOOLCHAIN_DIR:-~/.cache/kexpose/toolchain}/<key>/bin        the binaries
#   .../<key>/pulumi-home                                                 PULUMI_HOME (plugin cache)
#   .../<key>/share/kwok-stages.yaml                                      kwok's default stages
#   .../<key>/env.sh, env.json                                            what tests need to find it
#   ${KEXPOSE_GO_CACHE:-~/.cache/kexpose/go}/{mod,build}                  Go's module and build caches
#
# Usage:
#   scripts/toolchain.sh                 build what is missing (a no-op when everything is there)
#   scripts/toolchain.sh STEP...         build only these steps (etcd kwok k8s pulumi pyhost provider
#                                        pyplugins yaml gwapi traefik certmanager; also `kubectl`, not
#                                        built by default)
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
# The Python SDK pulumi-kubernetes asks the engine for the plugin version it was generated with.
# The project pins pulumi-kubernetes==4.25.0 (constraints.txt), the same version as this build,
# so no alias is needed; a venv with another SDK version can add that version here (the plugin
# cache matches versions exactly), at the risk of an SDK newer than the provider.
K8S_PROVIDER_ALIASES=${KEXPOSE_K8S_PROVIDER_ALIASES-}
# The Pulumi YAML language host (a bundled plugin: the CLI looks for it next to `pulumi`). v1.25.0
# (go.mod: pulumi pkg/sdk v3.206.0) does not compile against pkg/v3 v3.274.0 (plugin.Host vs
# *plugin.Context in schema.NewPluginLoader, NewContextWithRoot's arguments), so it is built with
# the pkg/sdk its own go.mod pins, in a wrapper of its own.
PULUMI_YAML_VERSION=v1.25.0
PULUMI_YAML_PULUMI_VERSION=v3.206.0
KUBE_VERSION=v1.36.3
KUBE_STAGING_VERSION=v0.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
# The Gateway API conformance suite and the standard-channel CRDs of the same release. The
# conformance module's go.mod requires the main module at a placeholder version the module proxy
# refuses, so the wrapper requires both at this version (as Envoy Gateway's test/go.mod does).
GATEWAY_API_VERSION=v1.6.3
# Traefik, the peer of kexpose-proxy in the benchmark and the `traefik` controller kind of the e2e
# journey (issues 8 and 9). Three of its dependencies are not served as its go.mod asks (a local
# nested module, a fork, six DNS SDKs of lego): prep_traefik says how the wrapper bridges each.
TRAEFIK_VERSION=v3.7.13
# cert-manager's controllers (CA and self-signed issuers, the Ingress and Gateway shims) and CRDs.
# Its cmd/controller is an untagged nested module the proxy does not serve, so the binary is a
# small main of ours (scripts/toolchain/cert-manager-controller.go) over the served root module.
CERT_MANAGER_VERSION=v1.21.2
# Bump when the build recipe changes in a way that changes the binaries.
RECIPE=1

# New steps go at the end, under the same key: a toolchain built before they existed keeps its
# binaries and builds only the new steps.
ALL_STEPS=(etcd kwok k8s pulumi pyhost provider pyplugins yaml gwapi traefik certmanager)

# ---- locations ---------------------------------------------------------------------------------
GO=${GO:-go}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
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
export KEXPOSE_GATEWAY_API_VERSION='$GATEWAY_API_VERSION'
export KEXPOSE_GATEWAY_API_CRDS='$SHARE/gateway-api-crds'
export KEXPOSE_TRAEFIK_VERSION='$TRAEFIK_VERSION'
export KEXPOSE_CERT_MANAGER_VERSION='$CERT_MANAGER_VERSION'
export KEXPOSE_CERT_MANAGER_CRDS='$SHARE/cert-manager-crds'
# The language host (from sdk/v3 ${PYHOST_SDK_VERSION}) ignores runtime options in Pulumi.yaml
# (virtualenv, toolchain): point PULUMI_PYTHON_CMD at the venv's python before running pulumi.
EOF
    mv "$ROOT/env.sh.tmp" "$ROOT/env.sh"
    python3 - "$ROOT" "$BIN" "$SHARE" "$PULUMI_HOME_DIR" "$K8S_PROVIDER_VERSION" "$K8S_PROVIDER_ALIASES" \
        "${PULUMI_VERSION#v}" "$KUBE_VERSION" "${ETCD_VERSION#v}" "${KWOK_VERSION#v}" "${PYHOST_SDK_VERSION#v}" "${PULUMI_YAML_VERSION#v}" \
        "$GATEWAY_API_VERSION" "${TRAEFIK_VERSION#v}" "${CERT_MANAGER_VERSION#v}" <<'EOF'
import json, sys
(root, bindir, share, home, prov, aliases, pulumi, kube, etcd, kwok, pyhost, yaml, gwapi, traefik,
 certmanager) = sys.argv[1:]
doc = {
    "root": root, "bin": bindir, "kwok_stages": f"{share}/kwok-stages.yaml", "pulumi_home": home,
    "gateway_api_crds": f"{share}/gateway-api-crds",
    "gateway_conformance": f"{bindir}/gateway-conformance.test",
    "cert_manager_crds": f"{share}/cert-manager-crds",
    "versions": {"pulumi": pulumi, "pulumi_language_python_from_sdk": pyhost, "pulumi_language_yaml": yaml,
                 "kubernetes_provider": prov, "kubernetes_provider_aliases": aliases.split(),
                 "kubernetes": kube, "etcd": etcd, "kwok": kwok, "gateway_api": gwapi,
                 "traefik": traefik, "cert_manager": certmanager},
}
with open(f"{root}/env.json.tmp", "w") as f:
    json.dump(doc, f, indent=2)
EOF
    mv "$ROOT/env.json.tmp" "$ROOT/env.json"
}

require_built() {
    local s
    for s in "${ALL_STEPS[@]}"; do
        [[ -f "$STAMPS/$s" ]] && outputs_present "$s" \
            || die "toolchain not built: step '$s' missing under $ROOT (run scripts/toolchain.sh)"
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
# Each step is split in two: prep_X resolves and downloads modules (network-bound; all preps run
# at once in the background so downloads overlap with compiling), build_X compiles (CPU-bound; the
# builds run one after another, each using every core).

prep_etcd() {
    local w gomod
    gomod=$(mod_field "go.etcd.io/etcd/server/v3@$ETCD_VERSION" GoMod) || die "etcd $ETCD_VERSION not served: $gomod"
    w=$(new_wrapper etcd)
    copy_replaces "$w" "$gomod"
    (cd "$w" && logged "$GO" get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION") || die "go get etcd server $ETCD_VERSION failed"
}

build_etcd() {
    (cd "$WORK/etcd" && logged "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3) \
        || die "building etcd failed"
    local version
    version=$("$BIN/etcd" --version) || die "etcd --version failed"
    # Not `| head -1`: under pipefail the writer can die of SIGPIPE when head exits first (141).
    printf '%s\n' "${version%%$'\n'*}" >&2
}

prep_kwok() {
    local w
    w=$(new_wrapper kwok)
    # kwok has no replace directives; `go install` would work, but a wrapper keeps one pattern.
    (cd "$w" && logged "$GO" get -tool "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") || die "go get kwok $KWOK_VERSION failed"
}

build_kwok() {
    local dir f
    (cd "$WORK/kwok" && logged "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok) \
        || die "building kwok failed"
    # kwok alone runs no stages: kwokctl injects its defaults. Ship the same "fast" stages.
    dir=$(cd "$WORK/kwok" && "$GO" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
    mkdir -p "$SHARE"
    for f in stage/node/fast/node-initialize.yaml stage/node/heartbeat/node-heartbeat.yaml \
             stage/pod/fast/pod-ready.yaml stage/pod/fast/pod-complete.yaml stage/pod/fast/pod-delete.yaml; do
        [[ -f "$dir/kustomize/$f" ]] || die "kwok $KWOK_VERSION has no kustomize/$f"
        cat "$dir/kustomize/$f"; echo '---'
    done >"$SHARE/kwok-stages.yaml"
}

# The version ldflags of a Kubernetes build. Without them /version says v0.0.0-master and
# pulumi-kubernetes refuses the cluster ("minimum supported cluster version is v1.13. found v0.0").
kube_ldflags() {
    local minor p ldf="-s -w" date
    minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
    date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldf="$ldf -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        ldf="$ldf -X $p.gitTreeState=clean -X $p.buildDate=$date"
    done
    echo "$ldf"
}

prep_k8s() {
    local w gomod m
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
    kube_ldflags >"$w/ldflags"
}

build_k8s() {
    local c
    # One `go build` for the three so the shared packages compile once and both cores stay busy.
    # kubectl is left out (tests use lightkube); `toolchain.sh kubectl` adds it for debugging.
    (cd "$WORK/k8s" && logged "$GO" build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$(cat ldflags)" \
        -o "$BIN/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler) || die "building kubernetes failed"
    local version
    for c in kube-apiserver kube-controller-manager kube-scheduler; do
        # Captured, not piped into `grep -q` (which exits at the first match: SIGPIPE, see etcd).
        version=$("$BIN/$c" --version) || die "$c --version failed"
        [[ $version == *"Kubernetes $KUBE_VERSION"* ]] || die "$c does not report $KUBE_VERSION"
    done
    "$BIN/kube-apiserver" --version >&2
}

# Optional (not in the default steps): kubectl from the k8s wrapper, for poking at a test cluster.
build_kubectl() {
    [[ -f "$WORK/k8s/ldflags" ]] || die "the kubectl step needs the k8s step first"
    (cd "$WORK/k8s" && logged "$GO" build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$(cat ldflags)" \
        -o "$BIN/kubectl" k8s.io/kubernetes/cmd/kubectl) || die "building kubectl failed"
    "$BIN/kubectl" version --client >&2
}

prep_pulumi() {
    local w pkgmod sdkmod
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
}

build_pulumi() {
    local sdkdir ldf
    ldf="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
    (cd "$WORK/pulumi" && logged "$GO" build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldf" -o "$BIN/pulumi" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) || die "building pulumi failed"
    # The language host runs this script with the program's Python; take it from the CLI's release.
    sdkdir=$(cd "$WORK/pulumi" && "$GO" list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
    install -m 0755 "$sdkdir/python/cmd/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
    "$BIN/pulumi" version >&2
}

prep_pyhost() {
    local w sdkmod
    # The real host module is refused by the proxy here; say so if that ever changes.
    if (cd "$WORK" && "$GO" list -m "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3@latest" >/dev/null 2>&1); then
        log "  note: the proxy now serves pulumi-language-python/v3; consider switching to it"
    fi
    sdkmod=$(mod_field "github.com/pulumi/pulumi/sdk/v3@$PYHOST_SDK_VERSION" GoMod) \
        || die "pulumi sdk/v3 $PYHOST_SDK_VERSION not served: $sdkmod"
    w=$(new_wrapper pyhost)
    copy_replaces "$w" "$sdkmod"
    (cd "$w" && logged "$GO" get -tool "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python@$PYHOST_SDK_VERSION") \
        || die "go get pulumi-language-python (sdk/v3 $PYHOST_SDK_VERSION) failed"
}

build_pyhost() {
    local ldf="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PYHOST_SDK_VERSION"
    (cd "$WORK/pyhost" && logged "$GO" build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldf" \
        -o "$BIN/pulumi-language-python" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python) \
        || die "building pulumi-language-python failed"
}

# Two shell scripts the CLI finds next to `pulumi` (its "bundled" plugins, looked up there even
# with PULUMI_IGNORE_AMBIENT_PLUGINS set); nothing is compiled:
# - pulumi-resource-pulumi-python serves Python dynamic providers (pulumi.dynamic, e.g. kexpose's
#   self-signed certificate); from python/dist of the CLI's own sdk/v3 module.
# - pulumi-analyzer-policy-python starts a Python policy pack (`python -m pulumi.policy <engine>
#   <pack dir>`); newer CLIs run packs through the language host instead and no longer ship it,
#   so it comes from python/dist of the language host's release (sdk/v3 $PYHOST_SDK_VERSION).
# A step of its own so that adding it did not change the key of an already built toolchain.
prep_pyplugins() {
    local cli host
    cli=$(mod_field "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" Dir) \
        || die "pulumi sdk/v3 $PULUMI_VERSION not served: $cli"
    host=$(mod_field "github.com/pulumi/pulumi/sdk/v3@$PYHOST_SDK_VERSION" Dir) \
        || die "pulumi sdk/v3 $PYHOST_SDK_VERSION not served: $host"
    [[ -f "$cli/python/dist/pulumi-resource-pulumi-python" ]] \
        || die "sdk/v3 $PULUMI_VERSION has no python/dist/pulumi-resource-pulumi-python"
    [[ -f "$host/python/dist/pulumi-analyzer-policy-python" ]] \
        || die "sdk/v3 $PYHOST_SDK_VERSION has no python/dist/pulumi-analyzer-policy-python"
    printf '%s\n%s\n' "$cli" "$host" >"$WORK/pyplugins.dirs"
}

build_pyplugins() {
    local cli host
    { read -r cli; read -r host; } <"$WORK/pyplugins.dirs"
    install -m 0755 "$cli/python/dist/pulumi-resource-pulumi-python" "$BIN/pulumi-resource-pulumi-python"
    install -m 0755 "$host/python/dist/pulumi-analyzer-policy-python" "$BIN/pulumi-analyzer-policy-python"
}

# A step of its own so that adding it did not change the key of an already built toolchain.
prep_yaml() {
    local w pkgmod sdkmod
    pkgmod=$(mod_field "github.com/pulumi/pulumi/pkg/v3@$PULUMI_YAML_PULUMI_VERSION" GoMod) \
        || die "pulumi pkg/v3 $PULUMI_YAML_PULUMI_VERSION not served: $pkgmod"
    sdkmod=$(mod_field "github.com/pulumi/pulumi/sdk/v3@$PULUMI_YAML_PULUMI_VERSION" GoMod) \
        || die "pulumi sdk/v3 $PULUMI_YAML_PULUMI_VERSION not served: $sdkmod"
    w=$(new_wrapper yaml)
    copy_replaces "$w" "$pkgmod" "$sdkmod"
    (cd "$w" && logged "$GO" get -tool "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml@$PULUMI_YAML_VERSION") \
        || die "go get pulumi-language-yaml $PULUMI_YAML_VERSION failed"
    [[ "$(cd "$w" && "$GO" list -m -f '{{.Version}}' github.com/pulumi/pulumi/pkg/v3)" == "$PULUMI_YAML_PULUMI_VERSION" ]] \
        || die "pulumi pkg/v3 drifted away from $PULUMI_YAML_PULUMI_VERSION in the yaml wrapper"
}

build_yaml() {
    local ldf="-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=$PULUMI_YAML_VERSION"
    (cd "$WORK/yaml" && logged "$GO" build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldf" \
        -o "$BIN/pulumi-language-yaml" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml) \
        || die "building pulumi-language-yaml failed"
}

prep_provider() {
    local src pk
    src=$(mod_field "github.com/pulumi/pulumi-kubernetes/provider/v4@$K8S_PROVIDER_MODVERSION" Dir) \
        || die "pulumi-kubernetes provider $K8S_PROVIDER_MODVERSION not served: $src"
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
    (cd "$pk" && logged "$GO" mod download) || die "downloading the provider's modules failed"
}

build_provider() {
    local pk="$WORK/provider" v
    [[ -x "$BIN/pulumi" ]] || die "the provider step needs the pulumi step first (plugin install)"
    # schema-embed.json and terraform-mapping-embed.json are gitignored and generated by the
    # provider's own `go generate` (VERSION=... go run ./generate.go), as its Makefile does.
    (cd "$pk/cmd/pulumi-resource-kubernetes" && VERSION=$K8S_PROVIDER_VERSION GOFLAGS="$GOFLAGS -mod=mod" \
        logged "$GO" generate ./main.go) || die "go generate for the provider's embed schema failed"
    [[ -s "$pk/cmd/pulumi-resource-kubernetes/schema-embed.json" ]] || die "schema-embed.json was not generated"
    (cd "$pk" && logged "$GO" build -mod=mod -trimpath \
        -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=v$K8S_PROVIDER_VERSION" \
        -o "$BIN/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes) || die "building the provider failed"
    # Install into the plugin cache (exact-version lookup) under its true version and aliases.
    mkdir -p "$PULUMI_HOME_DIR"
    for v in $K8S_PROVIDER_VERSION $K8S_PROVIDER_ALIASES; do
        PULUMI_HOME="$PULUMI_HOME_DIR" PULUMI_SKIP_UPDATE_CHECK=true logged "$BIN/pulumi" plugin install \
            resource kubernetes "$v" --file "$BIN/pulumi-resource-kubernetes" --reinstall \
            || die "pulumi plugin install resource kubernetes $v failed"
    done
    PULUMI_HOME="$PULUMI_HOME_DIR" PULUMI_SKIP_UPDATE_CHECK=true "$BIN/pulumi" plugin ls >&2
}

prep_gwapi() {
    local w
    w=$(new_wrapper gwapi)
    (cd "$w" && logged "$GO" get "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" \
        "sigs.k8s.io/gateway-api/conformance@$GATEWAY_API_VERSION") \
        || die "go get gateway-api (+conformance) $GATEWAY_API_VERSION failed"
    # The suite is a Go test: a test of our own that runs it, compiled to a binary with `go test -c`
    # (flags: -gateway-class, -supported-features, -report-output, ...; conformance/utils/flags).
    cat >"$w/conformance_test.go" <<'GO'
package conformance_test

import (
	"testing"

	"sigs.k8s.io/gateway-api/conformance"
)

func TestConformance(t *testing.T) {
	conformance.RunConformance(t)
}
GO
    (cd "$w" && logged "$GO" mod tidy) || die "go mod tidy for the conformance wrapper failed"
    [[ "$(cd "$w" && "$GO" list -m -f '{{.Version}}' sigs.k8s.io/gateway-api)" == "$GATEWAY_API_VERSION" ]] \
        || die "sigs.k8s.io/gateway-api drifted away from $GATEWAY_API_VERSION in the conformance wrapper"
}

build_gwapi() {
    local dir
    (cd "$WORK/gwapi" && logged "$GO" test -c -trimpath -ldflags "-s -w" \
        -o "$BIN/gateway-conformance.test" .) || die "building the Gateway API conformance suite failed"
    # The standard-channel CRDs of the same release: they carry the bundle-version annotation the
    # suite checks (conformance/utils/suite), so the CRDs and the suite must come from one module.
    dir=$(cd "$WORK/gwapi" && "$GO" list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)
    rm -rf "$SHARE/gateway-api-crds" && mkdir -p "$SHARE/gateway-api-crds"
    cp "$dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$SHARE/gateway-api-crds/"
    chmod -R u+w "$SHARE/gateway-api-crds"
    grep -q "bundle-version: $GATEWAY_API_VERSION" "$SHARE/gateway-api-crds/gateway.networking.k8s.io_gateways.yaml" \
        || die "the Gateway CRD does not carry bundle-version $GATEWAY_API_VERSION"
}

# Traefik from its module, through three gaps in what the module proxy serves (checked at v3.7.11-13):
# - its go.mod replaces github.com/traefik/traefik/dynamic/ext (required at v0.0.0-000...) with
#   ./pkg/config/dynamic/ext, a nested module that is neither in the v3 zip nor served. It holds the
#   extension points of the dynamic configuration, embedded inline in dynamic.HTTPConfiguration and
#   dynamic.Router (http_config.go) and empty in the open-source build: the wrapper points the
#   requirement at a local module declaring those two empty types (the build fails loudly if a
#   release starts using more of it);
# - it replaces github.com/abbot/go-http-auth with a containous fork at a pseudo-version the proxy
#   refuses (403; no version of the fork, nor any upstream pseudo-version, is served): the wrapper
#   uses a copy of the upstream release the fork comes from, v0.4.0, plus the two functions the
#   basic and digest auth middlewares take from the fork (CheckSecret: BasicAuth.CheckAuth's own
#   secret comparison, exported; DigestAuth.RequireAuthStale: the 401 with `stale=true`, RFC 7616
#   section 3.3, which v0.4.0's CheckAuth never asks for since it reports no stale nonces);
# - its ACME provider links lego's DNS-01 provider table, and six providers' SDKs are refused
#   (akamai edgegrid v13 and nrdcg/oci-go-sdk at every version; huaweicloud, sacloud, ucloud and
#   yandex-cloud dns at the pinned ones): the wrapper builds against a copy of the same lego
#   release whose generated table (providers/dns/zz_gen_dns_providers.go) leaves those six out, so
#   `--certificatesresolvers.*.acme.dnschallenge.provider=<one of them>` is "unrecognized" in this
#   build. Everything else is the release's code at the release's versions.
TRAEFIK_LEGO_DROPPED="edgedns oraclecloud huaweicloud sakuracloud ucloud yandexcloud"
TRAEFIK_REFUSED_MODULES="github.com/akamai/AkamaiOPEN-edgegrid-golang/v13 github.com/nrdcg/oci-go-sdk/common/v1065
    github.com/nrdcg/oci-go-sdk/dns/v1065 github.com/huaweicloud/huaweicloud-sdk-go-v3 github.com/sacloud/sacloud-sdk-go
    github.com/ucloud/ucloud-sdk-go github.com/yandex-cloud/go-sdk/services/dns"
prep_traefik() {
    local w gomod lego_version lego_dir auth_dir m
    gomod=$(mod_field "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" GoMod) \
        || die "traefik $TRAEFIK_VERSION not served: $gomod"
    w=$(new_wrapper traefik)
    copy_replaces "$w" "$gomod"
    grep -q 'github.com/traefik/traefik/dynamic/ext => ./pkg/config/dynamic/ext' "$gomod" \
        || log "  note: traefik $TRAEFIK_VERSION no longer replaces dynamic/ext locally; the stand-in may be unneeded"
    mkdir -p "$w/dynamic-ext"
    printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24\n' >"$w/dynamic-ext/go.mod"
    cat >"$w/dynamic-ext/ext.go" <<'GO'
// Package ext stands in for Traefik's unpublished dynamic/ext module (see scripts/toolchain.sh).
package ext

// HTTP is embedded inline in dynamic.HTTPConfiguration: no fields in the open-source build.
type HTTP struct{}

// Router is embedded inline in dynamic.Router: no fields in the open-source build.
type Router struct{}
GO
    (cd "$w" && "$GO" mod edit -replace=github.com/traefik/traefik/dynamic/ext=./dynamic-ext)
    auth_dir=$(mod_field "github.com/abbot/go-http-auth@v0.4.0" Dir) || die "go-http-auth v0.4.0 not served: $auth_dir"
    rm -rf "$w/go-http-auth" && cp -r "$auth_dir" "$w/go-http-auth" && chmod -R u+w "$w/go-http-auth"
    # v0.4.0 predates modules; a local replacement needs a go.mod.
    printf 'module github.com/abbot/go-http-auth\n\ngo 1.12\n' >"$w/go-http-auth/go.mod"
    cat >"$w/go-http-auth/kexpose_fork_additions.go" <<'GO'
package auth

// What Traefik's auth middlewares take from the containous fork, which the module proxy does not
// serve (see scripts/toolchain.sh in the kexpose repository).

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CheckSecret reports whether password matches an htpasswd secret, choosing the comparison by
// the secret's prefix exactly as BasicAuth.CheckAuth does.
func CheckSecret(password, secret string) bool {
	compare := compareFuncs[0].compare
	for _, cmp := range compareFuncs[1:] {
		if strings.HasPrefix(secret, cmp.prefix) {
			compare = cmp.compare
			break
		}
	}
	return compare([]byte(secret), []byte(password)) == nil
}

// RequireAuthStale is RequireAuth with stale=true (RFC 7616 section 3.3): the nonce was stale,
// the client may retry with the new one without asking the user again.
func (a *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) {
	if len(a.clients) > a.ClientCacheSize+a.ClientCacheTolerance {
		a.Purge(a.ClientCacheTolerance * 2)
	}
	nonce := RandomKey()
	a.clients[nonce] = &digest_client{nc: 0, last_seen: time.Now().UnixNano()}
	w.Header().Set(contentType, a.Headers.V().UnauthContentType)
	w.Header().Set(a.Headers.V().Authenticate,
		fmt.Sprintf(`Digest realm="%s", nonce="%s", opaque="%s", algorithm="MD5", qop="auth", stale=true`,
			a.Realm, nonce, a.Opaque))
	w.WriteHeader(a.Headers.V().UnauthCode)
	w.Write([]byte(a.Headers.V().UnauthResponse))
}
GO
    (cd "$w" && "$GO" mod edit -replace=github.com/abbot/go-http-auth=./go-http-auth)
    lego_version=$(awk '$1 == "github.com/go-acme/lego/v5" {print $2; exit}' "$gomod")
    [[ -n $lego_version ]] || die "traefik $TRAEFIK_VERSION does not require github.com/go-acme/lego/v5"
    lego_dir=$(mod_field "github.com/go-acme/lego/v5@$lego_version" Dir) || die "lego $lego_version not served: $lego_dir"
    rm -rf "$w/lego-v5" && cp -r "$lego_dir" "$w/lego-v5" && chmod -R u+w "$w/lego-v5"
    python3 - "$w/lego-v5/providers/dns/zz_gen_dns_providers.go" $TRAEFIK_LEGO_DROPPED <<'PY' || die "patching lego's DNS provider table failed"
import re, sys
path, dropped = sys.argv[1], sys.argv[2:]
src = open(path).read()
for name in dropped:
    imp = f'\t"github.com/go-acme/lego/v5/providers/dns/{name}"\n'
    case = re.compile(r'\tcase [^\n]*:\n\t\treturn ' + name + r'\.NewDNSProvider\(\)\n')
    if src.count(imp) != 1 or len(case.findall(src)) != 1:
        sys.exit(f"lego's provider table has no single import and case for {name}")
    src = case.sub("", src.replace(imp, ""))
open(path, "w").write(src)
PY
    for m in $TRAEFIK_REFUSED_MODULES; do (cd "$w/lego-v5" && "$GO" mod edit -droprequire="$m"); done
    (cd "$w" && "$GO" mod edit -replace="github.com/go-acme/lego/v5=./lego-v5")
    log "  lego $lego_version without DNS providers: $TRAEFIK_LEGO_DROPPED"
    (cd "$w" && logged "$GO" get -tool "github.com/traefik/traefik/v3/cmd/traefik@$TRAEFIK_VERSION") \
        || die "go get traefik $TRAEFIK_VERSION failed"
    [[ "$(cd "$w" && "$GO" list -m -f '{{.Version}}' github.com/traefik/traefik/v3)" == "$TRAEFIK_VERSION" ]] \
        || die "traefik drifted away from $TRAEFIK_VERSION in its wrapper"
}

build_traefik() {
    # The release build's ldflags (Makefile `binary`); the web UI is not built (webui/static holds
    # only a placeholder in the module), which the tests do not use.
    local p=github.com/traefik/traefik/v3/pkg/version version
    (cd "$WORK/traefik" && logged "$GO" build -trimpath \
        -ldflags "-s -w -X $p.Version=$TRAEFIK_VERSION -X $p.Codename=kexpose-e2e -X $p.BuildDate=$(date -u +%FT%TZ)" \
        -o "$BIN/traefik" github.com/traefik/traefik/v3/cmd/traefik) || die "building traefik failed"
    version=$("$BIN/traefik" version) || die "traefik version failed"
    [[ $version == *"${TRAEFIK_VERSION}"* ]] || die "traefik does not report $TRAEFIK_VERSION: $version"
    printf '%s\n' "${version%%$'\n'*}" >&2
}

prep_certmanager() {
    local w gomod
    gomod=$(mod_field "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" GoMod) \
        || die "cert-manager $CERT_MANAGER_VERSION not served: $gomod"
    w=$(new_wrapper certmanager)
    copy_replaces "$w" "$gomod"
    install -m 0644 "$SCRIPT_DIR/toolchain/cert-manager-controller.go" "$w/main.go"
    (cd "$w" && logged "$GO" get "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" \
        && logged "$GO" mod tidy) || die "resolving cert-manager $CERT_MANAGER_VERSION failed"
    [[ "$(cd "$w" && "$GO" list -m -f '{{.Version}}' github.com/cert-manager/cert-manager)" == "$CERT_MANAGER_VERSION" ]] \
        || die "cert-manager drifted away from $CERT_MANAGER_VERSION in its wrapper"
}

build_certmanager() {
    local dir
    (cd "$WORK/certmanager" && logged "$GO" build -trimpath \
        -ldflags "-s -w -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=$CERT_MANAGER_VERSION" \
        -o "$BIN/cert-manager-controller" .) || die "building the cert-manager controller failed"
    "$BIN/cert-manager-controller" -h >/dev/null 2>&1 || die "cert-manager-controller -h failed"
    # The CRDs of the same release (deploy/crds: plain CustomResourceDefinitions, no templating).
    dir=$(cd "$WORK/certmanager" && "$GO" list -m -f '{{.Dir}}' github.com/cert-manager/cert-manager)
    rm -rf "$SHARE/cert-manager-crds" && mkdir -p "$SHARE/cert-manager-crds"
    cp "$dir"/deploy/crds/*cert-manager.io_*.yaml "$SHARE/cert-manager-crds/"
    chmod -R u+w "$SHARE/cert-manager-crds"
    [[ -s "$SHARE/cert-manager-crds/cert-manager.io_certificates.yaml" ]] || die "cert-manager's Certificate CRD is missing"
    sha256sum "$SCRIPT_DIR/toolchain/cert-manager-controller.go" | cut -d' ' -f1 >"$SHARE/cert-manager-controller.sha256"
}

# What each step leaves in $BIN; a step whose stamp is there but whose output is gone reruns.
declare -A STEP_OUTPUTS=(
    [etcd]="etcd" [kwok]="kwok" [k8s]="kube-apiserver kube-controller-manager kube-scheduler"
    [kubectl]="kubectl" [pulumi]="pulumi pulumi-language-python-exec"
    [pyhost]="pulumi-language-python" [provider]="pulumi-resource-kubernetes"
    [pyplugins]="pulumi-resource-pulumi-python pulumi-analyzer-policy-python"
    [yaml]="pulumi-language-yaml" [gwapi]="gateway-conformance.test"
    [traefik]="traefik" [certmanager]="cert-manager-controller"
)
outputs_present() {
    local f v
    for f in ${STEP_OUTPUTS[$1]}; do [[ -x "$BIN/$f" ]] || return 1; done
    # A changed alias list (KEXPOSE_K8S_PROVIDER_ALIASES) reinstalls the plugin.
    if [[ $1 == provider ]]; then
        for v in $K8S_PROVIDER_VERSION $K8S_PROVIDER_ALIASES; do
            [[ -d "$PULUMI_HOME_DIR/plugins/resource-kubernetes-v$v" ]] || return 1
        done
    fi
    # The controller's source is in this repository, outside the key: rebuild when it changes.
    if [[ $1 == certmanager ]]; then
        [[ -s "$SHARE/cert-manager-crds/cert-manager.io_certificates.yaml" ]] || return 1
        [[ "$(cat "$SHARE/cert-manager-controller.sha256" 2>/dev/null)" == \
           "$(sha256sum "$SCRIPT_DIR/toolchain/cert-manager-controller.go" | cut -d' ' -f1)" ]] || return 1
    fi
}

# ---- driver ------------------------------------------------------------------------------------
main() {
    local force=0 steps=() todo=() s t0 t1 tp total0 mod0 mod1
    declare -A prep_pid=()
    while (($#)); do
        case $1 in
            --print-env) require_built; cat "$ROOT/env.sh"; return 0 ;;
            --print-env-json) require_built; cat "$ROOT/env.json"; return 0 ;;
            --root) echo "$ROOT"; return 0 ;;
            --force) force=1 ;;
            -h|--help) sed -n '2,24p' "$0"; return 0 ;;
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
        declare -F "build_$s" >/dev/null || die "unknown step '$s' (steps: ${ALL_STEPS[*]} kubectl)"
        if ((!force)) && [[ -f "$STAMPS/$s" ]] && outputs_present "$s"; then
            log "$s: up to date ($(cat "$STAMPS/$s"))"
        else
            todo+=("$s")
        fi
    done
    ((${#todo[@]})) && mod0=$(du -sm "$GOMODCACHE" | cut -f1)
    # Stop the background downloads if a build fails; they are this script's own children.
    trap 'for p in "${prep_pid[@]}"; do pkill -TERM -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done' EXIT
    for s in "${todo[@]}"; do
        rm -f "$STAMPS/$s"
        : >"$WORK/$s.log"
        declare -F "prep_$s" >/dev/null || continue
        (
            STEP_LOG="$WORK/$s.log"
            t0=$(date +%s)
            "prep_$s" 2>>"$STEP_LOG"
            echo "$(( $(date +%s) - t0 ))" >"$WORK/$s.prep-seconds"
        ) &
        prep_pid[$s]=$!
    done
    ((${#todo[@]})) && log "downloading modules for: ${todo[*]} (in the background)"
    for s in "${todo[@]}"; do
        STEP_LOG="$WORK/$s.log"
        tp=0
        if [[ -n "${prep_pid[$s]:-}" ]]; then
            wait "${prep_pid[$s]}" || { tail -n 40 "$STEP_LOG" >&2; die "$s: resolving/downloading modules failed (log: $STEP_LOG)"; }
            unset "prep_pid[$s]"
            tp=$(cat "$WORK/$s.prep-seconds")
        fi
        log "$s: building (modules ready after ${tp}s of downloading; log: $STEP_LOG)"
        t0=$(date +%s)
        "build_$s"
        t1=$(date +%s)
        echo "modules ${tp}s (in background), compile+link $((t1 - t0))s, $(date -u +%FT%TZ)" >"$STAMPS/$s"
        log "$s: built in $((t1 - t0))s"
    done
    trap - EXIT
    write_env
    log "binaries in $BIN:"
    for s in "$BIN"/*; do log "  $(basename "$s")  $(human "$s")"; done
    # Sizing the caches reads ~15 GB of metadata; only worth it when something was built.
    if ((${#todo[@]})); then
        mod1=$(du -sm "$GOMODCACHE" | cut -f1)
        log "module cache $(human "$GOMODCACHE") (+$((mod1 - mod0))M this run), build cache $(human "$GOCACHE")"
    fi
    log "total $(( $(date +%s) - total0 ))s; env: source $ROOT/env.sh"
}

main "$@"
