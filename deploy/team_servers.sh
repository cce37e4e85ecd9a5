#!/usr/bin/env bash
# Shared servers for a team, started the standard way on one machine: PostgreSQL (Debian's package)
# holding the databases of a Prefect server and of an MLflow tracking server that proxies artifacts
# (stored under FOLDER/artifacts). Every machine that runs dlautoml then exports what `start` prints.
#
#   deploy/team_servers.sh start FOLDER   # initialise (first time) and start all three, print the exports
#   deploy/team_servers.sh stop FOLDER    # stop all three (the data stays in FOLDER)
#
# Settings (environment): HOST (127.0.0.1; 0.0.0.0 to serve other machines), PG_PORT (5433),
# PREFECT_PORT (4200), MLFLOW_PORT (5000). Needs `apt-get install postgresql` and the project
# installed (make install): its .venv has prefect, mlflow and psycopg2.
set -euo pipefail

command=${1:?usage: team_servers.sh start|stop FOLDER}
folder=$(realpath -m "${2:?usage: team_servers.sh start|stop FOLDER}")
project=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$project/.venv/bin}
host=${HOST:-127.0.0.1}
pg_port=${PG_PORT:-5433}
prefect_port=${PREFECT_PORT:-4200}
mlflow_port=${MLFLOW_PORT:-5000}
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
database_url="dlautoml@127.0.0.1:$pg_port"

as_postgres() {  # PostgreSQL refuses to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_for() {  # URL, name, log
  for _ in $(seq 1 120); do
    curl -sf "$1" >/dev/null && return 0
    sleep 0.5
  done
  echo "error: the $2 did not answer at $1 within 60 s; its log: $3" >&2
  tail -n 20 "$3" >&2
  exit 1
}

stop_pidfile() {
  if [ -f "$1" ]; then
    kill "$(cat "$1")" 2>/dev/null || true
    rm -f "$1"
  fi
}

case "$command" in
start)
  if [ -z "$pg_bin" ]; then
    echo "error: PostgreSQL is not installed: apt-get install postgresql" >&2
    exit 1
  fi
  mkdir -p "$folder/artifacts" "$folder/prefect" "$folder/logs"
  if [ ! -f "$folder/postgres/PG_VERSION" ]; then
    mkdir -p "$folder/postgres"
    if [ "$(id -u)" = 0 ]; then
      chown postgres "$folder/postgres" "$folder/logs"
      if ! runuser -u postgres -- test -w "$folder/postgres"; then
        echo "error: the postgres user cannot reach $folder (a parent folder is private to root): choose a folder it can reach, or chmod o+x its parents" >&2
        exit 1
      fi
    fi
    as_postgres "$pg_bin/initdb" -D "$folder/postgres" -U dlautoml -A trust >/dev/null
  fi
  as_postgres "$pg_bin/pg_ctl" -D "$folder/postgres" -l "$folder/logs/postgres.log" -w \
    -o "-p $pg_port -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
  for database in prefect mlflow; do
    "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U dlautoml -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1 ||
      "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U dlautoml -d postgres -qc "CREATE DATABASE $database"
  done
  PREFECT_HOME="$folder/prefect" \
    PREFECT_API_DATABASE_CONNECTION_URL="postgresql+asyncpg://$database_url/prefect" \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    nohup "$bin/prefect" server start --host "$host" --port "$prefect_port" >"$folder/logs/prefect.log" 2>&1 &
  echo $! >"$folder/prefect.pid"
  nohup "$bin/mlflow" server --backend-store-uri "postgresql+psycopg2://$database_url/mlflow" \
    --artifacts-destination "$folder/artifacts" --host "$host" --port "$mlflow_port" \
    >"$folder/logs/mlflow.log" 2>&1 &
  echo $! >"$folder/mlflow.pid"
  address=$([ "$host" = 0.0.0.0 ] && hostname -f || echo "$host")
  wait_for "http://127.0.0.1:$prefect_port/api/health" "Prefect server" "$folder/logs/prefect.log"
  wait_for "http://127.0.0.1:$mlflow_port/health" "MLflow server" "$folder/logs/mlflow.log"
  echo "export PREFECT_API_URL=http://$address:$prefect_port/api DLAUTOML_TRACKING_URI=http://$address:$mlflow_port"
  ;;
stop)
  stop_pidfile "$folder/mlflow.pid"
  stop_pidfile "$folder/prefect.pid"
  if [ -n "$pg_bin" ] && [ -f "$folder/postgres/postmaster.pid" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$folder/postgres" -m fast -w stop >/dev/null
  fi
  ;;
*)
  echo "usage: team_servers.sh start|stop FOLDER" >&2
  exit 2
  ;;
esac
