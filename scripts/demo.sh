#!/usr/bin/env bash
# The demo: start the bundled Nebuly stand-in, sync the bundled CSV roster into it
# twice (the second run changes nothing), show the roster, stop the stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh minimal
PORT=8931
export NEBULY_API_KEY="${NEBULY_API_KEY:-demo-key}"
mkdir -p demo-state
rm -rf demo-state/nebuly.json demo-state/syncd   # every demo starts from an empty Nebuly project
.venv/bin/python -m standins.nebuly --port "$PORT" --api-key-env NEBULY_API_KEY \
  --state demo-state/nebuly.json > demo-state/standin.log 2>&1 &
standin=$!
trap 'kill $standin 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening demo-state/standin.log 2>/dev/null && break; sleep 0.1; done
grep -q listening demo-state/standin.log || { cat demo-state/standin.log; exit 1; }

echo; echo "### 1. What would change (syncd plan: dry run, nothing written)"
plan_output=$(.venv/bin/syncd plan --config config/demo.yaml 2>/dev/null) || true
printf '%s\n' "$plan_output" | sed -n '1,6p'
echo "   ..."
echo; echo "### 2. First sync (syncd once)"
.venv/bin/syncd once --config config/demo.yaml
echo; echo "### 3. Second sync: nothing changed, so zero write calls"
.venv/bin/syncd once --config config/demo.yaml
echo; echo "### Nebuly now holds (first 5 of the stand-in's roster):"
.venv/bin/python - "$PORT" <<'PY'
import json, sys, urllib.request
users = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_standin/users"))["users"]
for u in sorted(users, key=lambda u: u["end_user"])[:5]:
    print(f"  {u['end_user']:<32} {u['tags']}  from {u['active_from']}")
print(f"  ... {len(users)} users in all (kept in demo-state/nebuly.json until the next demo starts afresh)")
PY
