#!/usr/bin/env bash
# A self-hosted Temporal cluster on this machine, as users run one: temporal-server built from the Go module
# proxy, PostgreSQL for persistence and (SQL) visibility, several history shards, and the frontend, history,
# matching and worker services as four separate processes.
#
#   scripts/temporal-cluster.sh build                   build temporal-server and temporal-sql-tool once
#   scripts/temporal-cluster.sh start [--fast-dispatch] create the databases, start what is not running,
#                                                       register the namespace and dbchange's search attributes
#   scripts/temporal-cluster.sh status                  the frontend's address and each service's process
#   scripts/temporal-cluster.sh stop                    stop the services (the databases keep every workflow)
#   scripts/temporal-cluster.sh destroy                 stop, then drop both databases and the state folder
#
# --fast-dispatch writes the dynamic config the README recommends for dbchange
# (history.transferProcessorMaxPollRPS: 1000, system.enableActivityEagerExecution: true);
# without it the cluster runs with Temporal's defaults.
#
# Settings (environment):
#   DBCHANGE_CLUSTER_DIR       state folder: config, logs, pids, ports (default .tools/cluster)
#   DBCHANGE_CLUSTER_DATABASE  persistence database; visibility is <name>_visibility (default temporal)
#   DBCHANGE_CLUSTER_SHARDS    history shards, fixed when the databases are created (default 4)
#   TEMPORAL_NAMESPACE         namespace to register (default default)
#   PGHOST PGPORT PGUSER PGPASSWORD  the PostgreSQL that holds both databases (default 127.0.0.1:5432, postgres);
#                              the password is read from the environment by every process, never written to a file
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SERVER_VERSION=v1.29.1
TOOLS="$ROOT/.tools/bin"
SERVER_BIN="$TOOLS/temporal-server"
SQL_TOOL="$TOOLS/temporal-sql-tool"
STATE="${DBCHANGE_CLUSTER_DIR:-$ROOT/.tools/cluster}"
DATABASE="${DBCHANGE_CLUSTER_DATABASE:-temporal}"
VISIBILITY_DATABASE="${DATABASE}_visibility"
SHARDS="${DBCHANGE_CLUSTER_SHARDS:-4}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
PG_HOST="${PGHOST:-127.0.0.1}"
PG_PORT="${PGPORT:-5432}"
PG_USER="${PGUSER:-postgres}"
SERVICES=(history matching frontend worker)

say() { echo "temporal-cluster: $*" >&2; }
fail() { say "$*"; exit 1; }

build() {
  if [[ -x "$SERVER_BIN" && -x "$SQL_TOOL" && "$(cat "$TOOLS/temporal-server.version" 2>/dev/null)" == "$SERVER_VERSION" ]]; then return; fi
  command -v go >/dev/null 2>&1 || fail "Go is needed to build temporal-server $SERVER_VERSION from the Go module proxy; install Go"
  say "building temporal-server and temporal-sql-tool $SERVER_VERSION into .tools/bin (once; several minutes on a new machine)"
  local started=$SECONDS staging
  staging="$(mktemp -d)"
  # `go install` names the binaries after their folders (server, sql); they are renamed to what Temporal calls them.
  GOBIN="$staging" GOFLAGS=-mod=mod go install "go.temporal.io/server/cmd/server@$SERVER_VERSION" "go.temporal.io/server/cmd/tools/sql@$SERVER_VERSION" >&2
  mkdir -p "$TOOLS"
  mv "$staging/server" "$SERVER_BIN"
  mv "$staging/sql" "$SQL_TOOL"
  rmdir "$staging"
  echo "$SERVER_VERSION" >"$TOOLS/temporal-server.version"
  say "built in $((SECONDS - started))s"
}

# The sql tool logs every statement it runs: that goes to logs/schema.log, and its end is shown when it fails.
sql_tool() {
  mkdir -p "$STATE/logs"
  if ! SQL_PLUGIN=postgres12 SQL_HOST="$PG_HOST" SQL_PORT="$PG_PORT" SQL_USER="$PG_USER" SQL_PASSWORD="${PGPASSWORD:-}" \
    "$SQL_TOOL" "$@" >>"$STATE/logs/schema.log" 2>&1; then
    fail "temporal-sql-tool $* failed; the end of $STATE/logs/schema.log:"$'\n'"$(tail -n 5 "$STATE/logs/schema.log")"
  fi
}

cluster_metadata_written() {
  [[ "$(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$DATABASE" -tAc "SELECT count(*) FROM cluster_metadata_info")" -ge 1 ]]
}

database_exists() {
  [[ "$(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'")" == 1 ]]
}

# Creates a database with its schema the first time; later starts bring an existing schema up to this version.
prepare_database() {
  local name="$1" schema="$2"
  if ! database_exists "$name"; then
    say "creating database $name with the $schema schema"
    sql_tool --db "$name" create-database
    sql_tool --db "$name" setup-schema -v 0.0
  fi
  sql_tool --db "$name" update-schema --schema-name "$schema"
}

# Nine free ports, chosen once and kept in the state folder: clients keep the same address across restarts.
# They are taken below 32768: the cluster_membership table stores a service's port as a smallint.
choose_ports() {
  [[ -f "$STATE/ports.env" ]] && return
  node -e '
    const net = require("node:net");
    const names = ["FRONTEND", "FRONTEND_HTTP", "FRONTEND_MEMBERSHIP", "HISTORY", "HISTORY_MEMBERSHIP", "MATCHING", "MATCHING_MEMBERSHIP", "WORKER", "WORKER_MEMBERSHIP"];
    const bindable = (port) => new Promise((resolve) => {
      const server = net.createServer().once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    (async () => {
      const taken = new Set();
      for (const name of names) {
        let port;
        do port = 20000 + Math.floor(Math.random() * 12000);
        while (taken.has(port) || !(await bindable(port)));
        taken.add(port);
        console.log(`${name}_PORT=${port}`);
      }
    })();
  ' >"$STATE/ports.env"
}

write_config() {
  # shellcheck source=/dev/null
  source "$STATE/ports.env"
  mkdir -p "$STATE/config" "$STATE/logs"
  local service_block=""
  for service in frontend history matching worker; do
    local upper="${service^^}" http=""
    local grpc_var="${upper}_PORT" membership_var="${upper}_MEMBERSHIP_PORT"
    [[ $service == frontend ]] && http="
      httpPort: $FRONTEND_HTTP_PORT"
    service_block+="
  $service:
    rpc:
      grpcPort: ${!grpc_var}
      membershipPort: ${!membership_var}
      bindOnLocalHost: true$http"
  done
  # "enable-template" lets the server read PGPASSWORD from its environment, so no password is written here.
  cat >"$STATE/config/cluster.yaml" <<EOF
# enable-template
# Written by scripts/temporal-cluster.sh; rewritten at every start.
log:
  stdout: true
  level: warn

persistence:
  defaultStore: postgres
  visibilityStore: postgres-visibility
  numHistoryShards: $SHARDS
  datastores:
    postgres:
      sql:
        pluginName: postgres12
        databaseName: $DATABASE
        connectAddr: "$PG_HOST:$PG_PORT"
        connectProtocol: tcp
        user: $PG_USER
        password: {{ env "PGPASSWORD" | quote }}
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    postgres-visibility:
      sql:
        pluginName: postgres12
        databaseName: $VISIBILITY_DATABASE
        connectAddr: "$PG_HOST:$PG_PORT"
        connectProtocol: tcp
        user: $PG_USER
        password: {{ env "PGPASSWORD" | quote }}
        maxConns: 4
        maxIdleConns: 4
        maxConnLifetime: 1h

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1

services:$service_block

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:$FRONTEND_PORT"

dcRedirectionPolicy:
  policy: noop

dynamicConfigClient:
  filepath: "$STATE/config/dynamic-config.yaml"
  pollInterval: 10s
EOF
}

write_dynamic_config() {
  local fast="$1"
  {
    echo "# Written by scripts/temporal-cluster.sh start$([[ $fast == yes ]] && echo ' --fast-dispatch'); the services re-read it every 10s."
    echo "limit.maxIDLength:"
    echo "  - value: 255"
    if [[ $fast == yes ]]; then
      # A pipeline runs one activity after another; by default each new task waits for the shard's next read
      # of its queue (20 a second), and an activity is never handed back eagerly with the workflow task.
      echo "history.transferProcessorMaxPollRPS:"
      echo "  - value: 1000"
      echo "system.enableActivityEagerExecution:"
      echo "  - value: true"
    fi
  } >"$STATE/config/dynamic-config.yaml"
}

pid_of() { cat "$STATE/$1.pid" 2>/dev/null || true; }
is_running() {
  local pid
  pid="$(pid_of "$1")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # A killed service whose parent (often PID 1 in a container) has not reaped it yet is a zombie: not running.
  local stat
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ "$stat" == *"(temporal-server) "[^Z]* ]]
}

start_service() {
  local service="$1"
  if is_running "$service"; then return; fi
  # setsid: the service outlives this script and is not stopped by a Ctrl-C in the terminal that started it.
  setsid "$SERVER_BIN" --root "$STATE" --config config --env cluster --allow-no-auth start --service "$service" \
    >>"$STATE/logs/$service.log" 2>&1 </dev/null &
  echo $! >"$STATE/$service.pid"
}

address() {
  # shellcheck source=/dev/null
  source "$STATE/ports.env"
  echo "127.0.0.1:$FRONTEND_PORT"
}

temporal_cli() { "$(bash "$ROOT/scripts/temporal-cli.sh")" "$@" --address "$(address)"; }

# The services wait_until gives up on when one of them exits: those started so far.
WATCHED=()

wait_until() {
  local what="$1" seconds="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    for service in "${WATCHED[@]}"; do
      is_running "$service" || fail "the $service service exited while waiting for $what; the end of its log, $STATE/logs/$service.log:"$'\n'"$(tail -n 5 "$STATE/logs/$service.log" | cut -c1-400)"
    done
    ((SECONDS < deadline)) || fail "gave up waiting for $what after ${seconds}s; logs in $STATE/logs"
    sleep 0.5
  done
}

start() {
  local fast=no
  for argument in "$@"; do
    case "$argument" in
      --fast-dispatch) fast=yes ;;
      *) fail "unknown option $argument; usage: scripts/temporal-cluster.sh start [--fast-dispatch]" ;;
    esac
  done
  local started=$SECONDS
  build
  command -v psql >/dev/null 2>&1 || fail "psql is needed to look for the databases; install postgresql-client"
  mkdir -p "$STATE"
  prepare_database "$DATABASE" postgresql/v12/temporal
  prepare_database "$VISIBILITY_DATABASE" postgresql/v12/visibility
  choose_ports
  write_config
  write_dynamic_config "$fast"
  # On new databases the first service writes the cluster's metadata; services started at the same moment race
  # for that row and the losers exit. So history starts alone until the row is there.
  start_service history
  WATCHED=(history)
  wait_until "the cluster metadata in $DATABASE" 60 cluster_metadata_written
  for service in "${SERVICES[@]}"; do start_service "$service"; done
  WATCHED=("${SERVICES[@]}")
  wait_until "the frontend at $(address)" 90 temporal_cli operator cluster health
  if ! temporal_cli operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
    say "registering namespace $NAMESPACE"
    temporal_cli operator namespace create --namespace "$NAMESPACE" --retention 72h >&2
  fi
  # The history and matching services learn of a new namespace on their next refresh; a listing waits for it.
  wait_until "namespace $NAMESPACE" 60 temporal_cli workflow list --namespace "$NAMESPACE" --limit 1
  [[ -f "$ROOT/dist/cli/main.js" ]] || (cd "$ROOT" && npm run --silent build)
  TEMPORAL_ADDRESS="$(address)" TEMPORAL_NAMESPACE="$NAMESPACE" node "$ROOT/bin/dbchange.js" setup >&2
  {
    echo "TEMPORAL_ADDRESS=$(address)"
    echo "TEMPORAL_NAMESPACE=$NAMESPACE"
  } >"$STATE/cluster.env"
  say "ready in $((SECONDS - started))s at $(address) (namespace $NAMESPACE; $SHARDS history shards; $([[ $fast == yes ]] && echo 'fast dispatch' || echo 'default dispatch'))"
  say "use it with: set -a; source $STATE/cluster.env; set +a"
  address
}

status() {
  [[ -f "$STATE/ports.env" ]] || fail "no cluster in $STATE; start one with scripts/temporal-cluster.sh start"
  local down=0
  echo "frontend address: $(address)"
  for service in "${SERVICES[@]}"; do
    if is_running "$service"; then echo "$service: running (pid $(pid_of "$service"))"; else echo "$service: stopped"; down=1; fi
  done
  return $down
}

stop() {
  local pids=()
  for service in "${SERVICES[@]}"; do
    if is_running "$service"; then pids+=("$(pid_of "$service")"); kill -TERM "$(pid_of "$service")"; fi
  done
  local deadline=$((SECONDS + 20))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for service in "${SERVICES[@]}"; do rm -f "$STATE/$service.pid"; done
  say "stopped (the databases $DATABASE and $VISIBILITY_DATABASE keep every workflow)"
}

destroy() {
  stop
  for name in "$DATABASE" "$VISIBILITY_DATABASE"; do
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >&2
  done
  rm -rf "$STATE"
  say "dropped $DATABASE and $VISIBILITY_DATABASE, removed $STATE"
}

case "${1:-}" in
  build) build ;;
  start) shift; start "$@" ;;
  status) status ;;
  stop) stop ;;
  destroy) destroy ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
