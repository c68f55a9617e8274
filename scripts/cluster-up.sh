#!/usr/bin/env bash
# cluster-up: a three-member cloud on loopback, as separate processes.
#
#   1. builds the binary once into a temporary directory
#   2. starts etcd (Debian's etcd-server) and PostgreSQL (Debian's postgresql: initdb + postgres in the work
#      directory, as the postgres user when run as root) on free loopback ports
#   3. starts three `hashfleet server --cluster-etcd … --postgres …` members, each with its own data
#      directory, API, gateway and cluster ports
#   4. waits until every member sees three members, and issues one command to a node through each member's
#      /cluster/v1 endpoint (the node is not connected: the command is queued under the next seq of the
#      shared counter, 1, 2, 3 whichever member is asked)
#
# CHECK=1 stops after that and prints "cluster-up: ok"; otherwise the cluster runs until Ctrl-C.
# KEEP=1 keeps the working directory. Needs: go, etcd, initdb/postgres, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hashfleet-cluster.XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local code=$?
  # Newest first: the members leave etcd gracefully while etcd and Postgres still run.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  if [ "$code" -ne 0 ]; then
    echo "cluster-up: logs:" >&2
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }; done
  fi
  if [ "${KEEP:-}" = 1 ]; then echo "cluster-up: kept $WORK"; else rm -rf "$WORK"; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say()  { echo "cluster-up: $*"; }
fail() { echo "cluster-up: FAILED: $*" >&2; exit 1; }
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for $what"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
pgbin() {
  command -v "$1" 2>/dev/null && return
  ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort | tail -n 1
}

command -v etcd >/dev/null || fail "etcd not found (apt-get install etcd-server)"
INITDB=$(pgbin initdb); POSTGRES=$(pgbin postgres)
[ -n "$INITDB" ] && [ -n "$POSTGRES" ] || fail "PostgreSQL not found (apt-get install postgresql)"

say "building"
go build -o "$WORK/hashfleet" ./cmd/hashfleet

ETCD_PORT=$(free_port); ETCD_PEER=$(free_port)
etcd --name c --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-cluster "c=http://127.0.0.1:$ETCD_PEER" \
  --log-level warn --logger zap >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)

PG_PORT=$(free_port)
AS=()
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); mkdir -p "$WORK/pg"; chown postgres "$WORK/pg"; fi
"${AS[@]}" "$INITDB" -D "$WORK/pg/data" -U hashfleet --auth=trust -E UTF8 --no-sync >"$WORK/initdb.log" 2>&1
"${AS[@]}" "$POSTGRES" -D "$WORK/pg/data" -p "$PG_PORT" -k "$WORK/pg" -c listen_addresses=127.0.0.1 >"$WORK/postgres.log" 2>&1 &
PIDS+=($!)
wait_for "etcd" curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
wait_for "postgres" bash -c "echo > /dev/tcp/127.0.0.1/$PG_PORT"
sleep 1
DSN="postgres://hashfleet@127.0.0.1:$PG_PORT/postgres?sslmode=disable"

TOKEN=cluster-up-admin-token-0123456789
# One key-encryption key for every member: it seals the shared CA, command keys and enrollment secret.
"$WORK/hashfleet" server cluster-kek --out "$WORK/cluster.kek" >/dev/null
HTTPS=()
for i in 1 2 3; do
  api=$(free_port); gw=$(free_port); cl=$(free_port); ch=$(free_port); cg=$(free_port); mt=$(free_port)
  "$WORK/hashfleet" server --data-dir "$WORK/m$i" --admin-token "$TOKEN" --cluster-kek-file "$WORK/cluster.kek" \
    --listen "127.0.0.1:$api" --gateway-listen "127.0.0.1:$gw" --metrics-listen "127.0.0.1:$mt" \
    --cluster-etcd "etcd://127.0.0.1:$ETCD_PORT" --postgres "$DSN" \
    --cluster-listen "127.0.0.1:$cl" --cluster-http "127.0.0.1:$ch" --cluster-gateway-listen "127.0.0.1:$cg" \
    >"$WORK/member$i.log" 2>&1 &
  PIDS+=($!)
  HTTPS+=("127.0.0.1:$ch")
  say "member $i: API http://127.0.0.1:$api  cluster http://127.0.0.1:$ch/cluster/v1  cluster gateway 127.0.0.1:$cg"
done

members() { curl -fsS -H "Authorization: Bearer $TOKEN" "http://$1/cluster/v1/members"; }
three() { [ "$(members "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["members"]))')" = 3 ]; }
for h in "${HTTPS[@]}"; do wait_for "three members seen by $h" three "$h"; done
say "three members joined"

ca() { curl -fsS -H "Authorization: Bearer $TOKEN" "http://$1/cluster/v1/enrollment/ca" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])'; }
fps=$(for h in "${HTTPS[@]}"; do ca "$h"; done | sort -u)
[ "$(echo "$fps" | wc -l)" = 1 ] || fail "members serve different CAs: $fps"
say "one CA on every member's TLS cluster gateway: $fps"

seqs=()
for i in 0 1 2; do
  r=$(curl -fsS -H "Authorization: Bearer $TOKEN" -X POST -d "{\"command_id\":\"demo-$i\",\"actor\":\"cluster-up\"}" \
    "http://${HTTPS[$i]}/cluster/v1/nodes/demo-node/commands")
  seqs+=("$(echo "$r" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])')")
done
[ "${seqs[*]}" = "1 2 3" ] || fail "seqs issued through the three members: ${seqs[*]}, want 1 2 3"
say "one command through each member: seqs ${seqs[*]} from the shared counter"

if [ "${CHECK:-}" = 1 ]; then say "ok"; exit 0; fi
say "running; Ctrl-C stops everything"
wait
