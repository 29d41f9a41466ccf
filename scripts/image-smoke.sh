#!/usr/bin/env bash
# Image smoke test: build the image, run it the way the deploy files do (read-only root,
# UID 10001, no capabilities, tmpfs /tmp) against the Nebuly stand-in over HTTPS with
# a throwaway CA (nebuly.ca_file), and check:
#   - /livez and /readyz answer 200 and /metrics counts the completed run;
#   - the stand-in holds the CSV's users;
#   - the container log has one whole JSON line per event (no partial lines);
#   - PID 1 is tini and reaps an orphaned child left by `exec`;
#   - the root filesystem is read-only;
#   - SIGTERM (`stop -t 10`) ends it with exit code 0 within 10 s.
#
#   bash scripts/image-smoke.sh                  # VARIANT=slim
#   VARIANT=full bash scripts/image-smoke.sh
#   IMAGE=syncd:mine SKIP_BUILD=1 bash scripts/image-smoke.sh   # test an existing image
#
# Needs root and buildah + podman (as on Debian: apt-get install buildah podman runc),
# or docker. Without either it prints a notice and exits 0 (CI goes on). BASE_IMAGE
# (default python:3.11-slim-bookworm) must be present or pullable; if it is neither
# and debootstrap is installed, a local bookworm base is made as docs/deploy.md shows.
# Behind a TLS-inspecting proxy, the build's pip gets the host's CA bundle
# (PIP_CERT, SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt; buildah only).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VARIANT="${VARIANT:-slim}"
IMAGE="${IMAGE:-localhost/syncd:smoke-$VARIANT}"
BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim-bookworm}"
PY="${PYTHON:-.venv/bin/python}"
NAME="syncd-smoke-$$"

say() { printf 'image-smoke: %s\n' "$*"; }
skip() { say "SKIPPED: $*"; exit 0; }
fail() { say "FAIL: $*"; exit 1; }

# ---------------------------------------------------------------- container tool
if command -v podman >/dev/null 2>&1 && command -v buildah >/dev/null 2>&1; then
    ENGINE=podman
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    ENGINE=docker
else
    skip "no container tool (buildah + podman, or a running docker); the image was not tested"
fi
[[ "$(id -u)" -eq 0 ]] || skip "needs root (rootless builds are not set up here)"
RUN_FLAGS=()
if [[ "$ENGINE" == podman ]]; then
    # crun rejects some hybrid cgroup layouts where runc works; podman wants explicit
    # ulimits on hosts whose hard limits it cannot raise.
    command -v runc >/dev/null 2>&1 && RUN_FLAGS+=(--runtime runc)
    RUN_FLAGS+=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --log-driver k8s-file)
    # podman runs HEALTHCHECK through systemd timers, absent on build hosts and in CI.
    RUN_FLAGS+=(--no-healthcheck)
fi

WORK="$(mktemp -d)"
standin_pid=""
cleanup() {
    "$ENGINE" rm -f "$NAME" >/dev/null 2>&1 || true
    [[ -n "$standin_pid" ]] && kill "$standin_pid" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- build
ensure_base() {
    "$ENGINE" image exists "$BASE_IMAGE" 2>/dev/null && return 0
    "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
    timeout 120 "$ENGINE" pull -q "$BASE_IMAGE" >/dev/null 2>&1 && return 0
    local local_base=localhost/bookworm-py311:latest
    if "$ENGINE" image inspect "$local_base" >/dev/null 2>&1; then
        BASE_IMAGE="$local_base"; return 0
    fi
    command -v debootstrap >/dev/null 2>&1 \
        || skip "base image $BASE_IMAGE not present or pullable, and no debootstrap to make one"
    say "making a local bookworm base ($local_base) with debootstrap"
    debootstrap --variant=minbase --include=python3.11,python3,ca-certificates bookworm \
        "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
    tar -C "$WORK/rootfs" -c . | "$ENGINE" import - "$local_base" >/dev/null
    rm -rf "$WORK/rootfs"
    BASE_IMAGE="$local_base"
}

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    ensure_base
    build=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "VARIANT=$VARIANT" -t "$IMAGE" .)
    start=$(date +%s)
    if [[ "$ENGINE" == podman ]]; then
        ca="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
        mounts=()
        if [[ -f "$ca" ]]; then
            printf '[global]\ncert = /run/hostca/ca.crt\n' >"$WORK/pip.conf"
            mounts=(-v "$ca:/run/hostca/ca.crt:ro" -v "$WORK/pip.conf:/etc/pip.conf:ro")
        fi
        buildah bud --isolation chroot --format docker --layers "${mounts[@]}" "${build[@]}" \
            >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "build"; }
    else
        docker build "${build[@]}" >"$WORK/build.log" 2>&1 \
            || { tail -40 "$WORK/build.log"; fail "build"; }
    fi
    say "built $IMAGE (VARIANT=$VARIANT, BASE_IMAGE=$BASE_IMAGE) in $(( $(date +%s) - start )) s"
fi
size=$("$ENGINE" image inspect "$IMAGE" --format '{{.Size}}')
say "image size: $(( size / 1000000 )) MB ($size bytes)"

# ---------------------------------------------------------------- stand-in + config
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
NEBULY_PORT=$(free_port)
HEALTH_PORT=$(free_port)
export NEBULY_API_KEY="smoke-key-$RANDOM$RANDOM"
mkdir -p "$WORK/etc" "$WORK/secrets" "$WORK/data" "$WORK/state"
"$PY" -m standins.nebuly --port "$NEBULY_PORT" --api-key-env NEBULY_API_KEY \
    --tls-dir "$WORK/tls" >"$WORK/standin.log" 2>&1 &
standin_pid=$!
for _ in $(seq 100); do grep -q listening "$WORK/standin.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$WORK/standin.log" || { cat "$WORK/standin.log"; fail "stand-in did not start"; }

cp "$WORK/tls/ca.pem" "$WORK/etc/corp-ca.pem"
printf '%s' "$NEBULY_API_KEY" >"$WORK/secrets/nebuly-api-key"
printf 'email,department\n' >"$WORK/data/roster.csv"
for i in $(seq 1 20); do printf 'user%02d@example.com,Dept%d\n' "$i" $((i % 3)) >>"$WORK/data/roster.csv"; done
cat >"$WORK/etc/config.yaml" <<EOF
nebuly:
  base_url: https://127.0.0.1:$NEBULY_PORT
  api_key_file: /run/secrets/syncd/nebuly-api-key
  ca_file: corp-ca.pem
  max_retries: 1
sources:
  - name: hr
    type: csv
    path: /data/roster.csv
    end_user: "{email}"
    tags:
      department: "{department}"
state_dir: /var/lib/syncd
schedule:
  interval: 1h
health:
  host: 127.0.0.1
  port: $HEALTH_PORT
EOF
chmod 0755 "$WORK" "$WORK/etc" "$WORK/secrets" "$WORK/data"
chmod 0444 "$WORK/etc/"* "$WORK/secrets/"* "$WORK/data/"*
chown 10001:10001 "$WORK/state"

# ---------------------------------------------------------------- run
"$ENGINE" run -d --name "$NAME" "${RUN_FLAGS[@]}" --network host \
    --read-only --tmpfs /tmp:size=64m --user 10001:10001 --cap-drop ALL \
    --security-opt no-new-privileges -e SYNCD_HEALTH_PORT="$HEALTH_PORT" \
    -v "$WORK/etc:/etc/syncd:ro" -v "$WORK/secrets:/run/secrets/syncd:ro" \
    -v "$WORK/data:/data:ro" -v "$WORK/state:/var/lib/syncd" \
    "$IMAGE" >/dev/null

http_status() {  # http_status PATH -> the status code (000 when nothing answers)
    "$PY" - "http://127.0.0.1:$HEALTH_PORT$1" <<'PYEOF'
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=3).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except OSError:
    print("000")
PYEOF
}
wait_status() {  # wait_status PATH SECONDS
    local deadline=$(( $(date +%s) + $2 ))
    while (( $(date +%s) < deadline )); do
        [[ "$(http_status "$1")" == 200 ]] && return 0
        sleep 0.5
    done
    "$ENGINE" logs "$NAME" 2>&1 | tail -20
    fail "$1 did not answer 200 within $2 s"
}
failures=0
check() {  # check NAME CMD...
    local name="$1"
    shift
    if "$@"; then say "PASS  $name"; else say "FAIL  $name"; failures=$((failures + 1)); fi
}

wait_status /livez 60
wait_status /readyz 60
say "PASS  /livez and /readyz answer 200"

metrics_ok() {
    "$PY" - "http://127.0.0.1:$HEALTH_PORT/metrics" <<'PYEOF'
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=3).read().decode()
sys.exit('syncd_runs_total{status="ok"} 1.0' not in text)
PYEOF
}
check "/metrics counts one ok run" metrics_ok

standin_has_users() {
    "$PY" - "https://127.0.0.1:$NEBULY_PORT/_standin/users" "$WORK/tls/ca.pem" <<'PYEOF'
import json, ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
users = json.load(urllib.request.urlopen(sys.argv[1], timeout=5, context=ctx))["users"]
print(f"stand-in holds {len(users)} users")
sys.exit(len(users) != 20)
PYEOF
}
check "20 users synced over HTTPS trusting nebuly.ca_file" standin_has_users

pid1_is_tini() {
    "$ENGINE" exec "$NAME" python3 -c \
        'import sys; sys.exit(b"tini" not in open("/proc/1/cmdline", "rb").read())'
}
check "PID 1 is tini" pid1_is_tini

# `exec` a shell that leaves an orphan behind: it is re-parented to PID 1, which must
# reap it once it exits, or it stays a zombie.
no_zombies() {
    "$ENGINE" exec "$NAME" sh -c 'sleep 0.2 & exit 0'
    sleep 1.5
    "$ENGINE" exec "$NAME" python3 -c '
import glob, sys
zombies = []
for path in glob.glob("/proc/[0-9]*/stat"):
    try:
        state = open(path).read().rsplit(")", 1)[1].split()[0]
    except OSError:
        continue
    if state == "Z":
        zombies.append(path)
print("zombies:", zombies)
sys.exit(bool(zombies))'
}
check "an orphaned child of exec is reaped" no_zombies

read_only_root() { ! "$ENGINE" exec "$NAME" touch /opt/syncd/x 2>/dev/null; }
check "root filesystem is read-only" read_only_root

# ---------------------------------------------------------------- SIGTERM
start_ns=$(date +%s%N)
"$ENGINE" stop -t 10 "$NAME" >/dev/null
elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
code=$("$ENGINE" inspect "$NAME" --format '{{.State.ExitCode}}')
say "stop took ${elapsed_ms} ms, exit code $code"
stopped_cleanly() { [[ "$code" == 0 ]] && (( elapsed_ms < 10000 )); }
check "SIGTERM: exit 0 within 10 s" stopped_cleanly

# ---------------------------------------------------------------- logs
"$ENGINE" logs "$NAME" >"$WORK/container.log" 2>&1
json_lines() {
    "$PY" - "$WORK/container.log" "$NEBULY_API_KEY" <<'PYEOF'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
events = [json.loads(line)["event"] for line in lines]  # fails on any non-JSON line
assert sys.argv[2] not in "\n".join(lines), "the API key reached the logs"
for needed in ("daemon.started", "sync.finished", "daemon.stopping", "daemon.stopped"):
    assert needed in events, f"no {needed} event"
print(f"{len(events)} events, each one JSON line")
PYEOF
}
check "logs: one JSON object per line, no secret" json_lines

# The runtime's own log records whether each line arrived whole: a partial line is one
# event written in more than one write (k8s-file: "P" tag; json-file: no newline).
no_partial_lines() {
    local path
    path=$("$ENGINE" inspect "$NAME" --format '{{.HostConfig.LogConfig.Path}}')
    [[ -n "$path" && -f "$path" ]] || path=$("$ENGINE" inspect "$NAME" --format '{{.LogPath}}')
    [[ -f "$path" ]] || { echo "no container log file found"; return 1; }
    "$PY" - "$path" "$ENGINE" <<'PYEOF'
import json, sys
path, engine = sys.argv[1], sys.argv[2]
lines = open(path, encoding="utf-8").read().splitlines()
if engine == "podman":   # k8s-file: TIMESTAMP STREAM F|P TEXT
    partial = [l for l in lines if l.split(" ", 3)[2] != "F"]
else:                    # docker json-file
    partial = [l for l in lines if not json.loads(l)["log"].endswith("\n")]
print(f"{len(lines)} log records, {len(partial)} partial")
sys.exit(bool(partial) or not lines)
PYEOF
}
check "container log: every record a whole line" no_partial_lines

if [[ "$VARIANT" == slim ]]; then
    # An Entra source in the slim image: a clear source failure, not a crash.
    cat >"$WORK/etc/entra.yaml" <<EOF
nebuly:
  base_url: https://127.0.0.1:$NEBULY_PORT
  api_key_file: /run/secrets/syncd/nebuly-api-key
  ca_file: corp-ca.pem
sources:
  - name: aad
    type: entra
    tenant_id: 00000000-0000-0000-0000-000000000000
    client_id: 00000000-0000-0000-0000-000000000001
    client_secret: not-used-here
    end_user: "{mail}"
EOF
    chmod 0444 "$WORK/etc/entra.yaml"
    slim_says_entra_missing() {
        local out rc=0
        out=$("$ENGINE" run --rm "${RUN_FLAGS[@]}" --read-only --user 10001:10001 \
            -v "$WORK/etc:/etc/syncd:ro" -v "$WORK/secrets:/run/secrets/syncd:ro" \
            "$IMAGE" once --config /etc/syncd/entra.yaml 2>&1) || rc=$?
        echo "exit $rc: $(grep -o "[^\"]*syncd\[entra\][^\"]*" <<<"$out" | head -1)"
        # A missing extra is a config error (exit 2) naming what to install.
        [[ "$rc" == 2 ]] && grep -q 'syncd\[entra\]' <<<"$out"
    }
    check "slim: an Entra source is a config error (exit 2) naming the missing extra" slim_says_entra_missing
fi

if [[ "$VARIANT" == full ]]; then
    entra_imports() {
        "$ENGINE" run --rm "${RUN_FLAGS[@]}" --read-only --entrypoint python3 "$IMAGE" -c \
            'import time; t = time.monotonic(); import syncd.sources.entra.graph, syncd.sources.entra.auth, msgraph.graph_service_client, azure.identity.aio; print(f"Entra SDK imports in {time.monotonic() - t:.1f} s")'
    }
    check "full: the Entra SDK imports on a read-only root" entra_imports
fi

if ((failures)); then
    fail "$failures check(s) failed"
fi
say "all checks passed ($IMAGE)"
