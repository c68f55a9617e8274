#!/usr/bin/env bash
# split-demo: split mode end to end, as separate processes on loopback.
#
#   1. builds the binary once (go build) into a temporary directory
#   2. starts a simulated site (hashfleet minersim, 3 miners) and the cloud (hashfleet server: API + TLS gateway)
#   3. enrolls a node: one-time code from the API; the node pins the server's CA by the fingerprint the server
#      printed, prints its identity fingerprint; the operator (this script) checks it against the one the API
#      shows and confirms it through the API; only then does the node get its api_key
#   4. runs the node, pairs its devices through the API, waits for telemetry in the API
#   5. issues a command through the API and checks the simulated miner executed it (its write log)
#   6. replays the captured signed command (unchanged, under another command id, and tampered) onto the node's
#      stream and shows the node's audit refusing each, with no second write on the miner
#
# Prints "split-demo: ok" and exits 0 only if all of that happened. KEEP=1 keeps the working directory.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hashfleet-split-demo.XXXXXX")
PIDS=()
cleanup() {
  local code=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$code" -ne 0 ]; then
    echo "split-demo: logs:" >&2
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 40 "$f" >&2; }; done
  fi
  if [ "${KEEP:-}" = 1 ]; then echo "split-demo: kept $WORK"; else rm -rf "$WORK"; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say()  { echo "split-demo: $*"; }
fail() { echo "split-demo: FAILED: $*" >&2; exit 1; }

# wait_for DESCRIPTION COMMAND...: retry COMMAND every 0.1 s for up to 30 s.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for $what"
}

# grab FILE REGEX: the first capture group of REGEX (sed -E) in FILE, waiting for it to appear.
grab() {
  local file=$1 re=$2 v=""
  for _ in $(seq 1 300); do
    v=$(sed -nE "s#.*${re}.*#\1#p" "$file" 2>/dev/null | head -n 1)
    [ -n "$v" ] && { echo "$v"; return 0; }
    sleep 0.1
  done
  fail "no match for /$re/ in $file"
}

TOKEN="split-demo-admin-token-$RANDOM$RANDOM"
api() { # api METHOD PATH [JSON]
  if [ $# -ge 3 ]; then
    curl -fsS -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data "$3" "$API$2"
  else
    curl -fsS -X "$1" -H "Authorization: Bearer $TOKEN" "$API$2"
  fi
}

say "building hashfleet into $WORK"
go build -o "$WORK/hashfleet" ./cmd/hashfleet
go build -o "$WORK/jget" ./scripts/jget
HF="$WORK/hashfleet"; JGET="$WORK/jget"

say "starting the simulated site (3 miners)"
"$HF" minersim --miners 3 --devices-out "$WORK/devices.json" --admin-listen 127.0.0.1:0 >"$WORK/minersim.log" 2>&1 &
PIDS+=($!)
SIM=$(grab "$WORK/minersim.log" 'admin view (http://[0-9.:]+)/writes')

say "starting the cloud server"
"$HF" server --data-dir "$WORK/server" --listen 127.0.0.1:0 --gateway-listen 127.0.0.1:0 \
  --admin-token "$TOKEN" --debug-inject --log-level warn --metrics-listen 127.0.0.1:0 >"$WORK/server.log" 2>&1 &
PIDS+=($!)
API=$(grab "$WORK/server.log" 'API and UI (http://[0-9.:]+)/')
GW=$(grab "$WORK/server.log" 'gateway +([0-9.:]+) \(TLS\)')
CAFP=$(grab "$WORK/server.log" 'CA fingerprint (SHA256:[0-9a-f]+)')
say "  API $API, gateway $GW (TLS), CA $CAFP"

say "minting a one-time enrollment code through the API"
CODE=$(api POST /api/v1/enrollment-codes '{"site":"demo"}' | "$JGET" .code)

say "enrolling the node (pins the CA by its fingerprint, makes its keys)"
"$HF" node enroll --server "$GW" --code "$CODE" --data-dir "$WORK/node" --ca-fingerprint "$CAFP" \
  --name demo-node --poll 200ms >"$WORK/enroll.log" 2>&1 &
ENROLL=$!
PIDS+=($ENROLL)
PRINTED=$(grab "$WORK/enroll.log" 'node identity fingerprint: (SHA256:[0-9a-f-]+)')
NODE=$(grab "$WORK/enroll.log" 'enrolled as node (n[0-9a-f]+)')
SHOWN=$(api GET /api/v1/nodes/pending | "$JGET" '.nodes.0.fingerprint')
say "  node $NODE printed $PRINTED; the API shows $SHOWN"
[ "$PRINTED" = "$SHOWN" ] || fail "the fingerprint the API shows is not the one the node printed"
api POST "/api/v1/nodes/$NODE/confirm" "{\"fingerprint\":\"$PRINTED\"}" >/dev/null
wait "$ENROLL" || fail "node enroll failed"
grep -q "confirmed: node $NODE" "$WORK/enroll.log" || fail "enroll did not confirm"
say "  confirmed; the node saved its api_key"

say "running the node"
"$HF" node run --data-dir "$WORK/node" --devices "$WORK/devices.json" --poll-interval 1s --log-level warn \
  --metrics-listen 127.0.0.1:0 >"$WORK/node.log" 2>&1 &
PIDS+=($!)
pending3() { [ "$(api GET "/api/v1/devices/pending?node=$NODE" | "$JGET" -len .devices)" = 3 ]; }
wait_for "the node's 3 devices waiting for pairing" pending3
IDS=$(api GET "/api/v1/devices/pending?node=$NODE" | "$JGET" '.devices.*.miner_id' | sed 's/.*/"&"/' | paste -sd, -)
api POST "/api/v1/nodes/$NODE/devices" "{\"miner_ids\":[$IDS]}" >/dev/null
say "  paired $IDS"
mining3() { [ "$(api GET /api/v1/miners | "$JGET" '.items.*.state' | grep -c '^mining$')" = 3 ]; }
wait_for "telemetry of 3 mining miners in the API" mining3
say "  telemetry in the API: $(api GET /api/v1/miners | "$JGET" '.items.*.id' | paste -sd' ' -) mining"

say "stopping sim-1 through the API"
CMD=$(api POST /api/v1/commands '{"miner_ids":["sim-1"],"action":"stop"}' | "$JGET" .command_id)
done_ok() { [ "$(api GET "/api/v1/commands/$CMD" | "$JGET" .status)" = succeeded ]; }
wait_for "command $CMD to succeed" done_ok
WRITES=$(curl -fsS "$SIM/writes")
[ "$(echo "$WRITES" | "$JGET" -len .writes)" = 1 ] || fail "expected one write on the site, got: $WRITES"
[ "$(echo "$WRITES" | "$JGET" '.writes.0.miner')" = sim-1 ] || fail "the write was not on sim-1: $WRITES"
say "  command $CMD succeeded; sim-1 executed '$(echo "$WRITES" | "$JGET" '.writes.0.command')' (minersim write log)"

say "replaying the captured signed command (seq 1) onto the node's stream"
api GET "/api/v1/nodes/$NODE/commands/1" >"$WORK/captured.json"
api POST "/api/v1/nodes/$NODE/inject" "$(cat "$WORK/captured.json")" >/dev/null
sed -E 's/"commandId":"[^"]*"/"commandId":"replayed-by-attacker"/' "$WORK/captured.json" >"$WORK/replay.json"
api POST "/api/v1/nodes/$NODE/inject" "$(cat "$WORK/replay.json")" >/dev/null
sed -E 's/"commandId":"[^"]*"/"commandId":"tampered-by-attacker"/; s/"actor":"[^"]*"/"actor":"user:mallory"/' "$WORK/captured.json" >"$WORK/tampered.json"
api POST "/api/v1/nodes/$NODE/inject" "$(cat "$WORK/tampered.json")" >/dev/null
audit_has() { api GET "/api/v1/nodes/$NODE/audit" | "$JGET" '.records.*' | grep "\"command_id\":\"$1\"" | grep -q "\"code\":\"$2\""; }
wait_for "the node's audit: duplicate" audit_has "$CMD" duplicate
wait_for "the node's audit: refused_seq" audit_has replayed-by-attacker refused_seq
wait_for "the node's audit: refused_signature" audit_has tampered-by-attacker refused_signature
api GET "/api/v1/nodes/$NODE/audit" | "$JGET" '.records.*' | while read -r rec; do
  say "  node audit: seq $(echo "$rec" | "$JGET" .seq) $(echo "$rec" | "$JGET" .command_id): $(echo "$rec" | "$JGET" .code) $(echo "$rec" | "$JGET" .message)"
done
sleep 1
[ "$(curl -fsS "$SIM/writes" | "$JGET" -len .writes)" = 1 ] || fail "a replay executed on the site: $(curl -fsS "$SIM/writes")"
say "  the miners' write log still holds one write: nothing replayed ran"

SRVMETRICS=$(grab "$WORK/server.log" 'metrics +(http://[0-9.:]+)/metrics')
NODEMETRICS=$(grab "$WORK/node.log" 'metrics +(http://[0-9.:]+)/metrics')
curl -fsS "$SRVMETRICS/readyz" >/dev/null || fail "the server is not ready: $(curl -sS "$SRVMETRICS/readyz")"
curl -fsS "$NODEMETRICS/readyz" >/dev/null || fail "the node is not ready: $(curl -sS "$NODEMETRICS/readyz")"
curl -fsS "$NODEMETRICS/metrics" | grep -q '^hashfleet_node_gate_decisions_total{code="refused_seq"} 1$' ||
  fail "the node's /metrics does not count the refused replay"
say "  metrics: server $SRVMETRICS/metrics, node $NODEMETRICS/metrics (both ready; the node counts the refused replay)"

say "node status (read-only, from the running node's status file):"
"$HF" node status --data-dir "$WORK/node" | sed 's/^/    /'
say "ok"
