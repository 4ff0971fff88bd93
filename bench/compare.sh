#!/usr/bin/env bash
# Side by side, in ONE run: errand's workloads and its peers' (../../shared/bench-peers) on
# this machine, then one table (bench/report.py). Takes ~25 min (+ peer venvs the first time).
#   bench/compare.sh                 # every peer setting listed below + MUXI runtime + errand
#   SKIP_PEERS=1 bench/compare.sh    # errand only
#   SKIP_MUXI=1 ...                  # without the MUXI runtime
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PEERS_DIR="${PEERS_DIR:-$ROOT/../shared/bench-peers}"
export BENCH_SCRATCH="${BENCH_SCRATCH:-/tmp/errand-bench-peers}"
PY="$ROOT/.venv/bin/python"
STAMP="$(date +%Y%m%dT%H%M%S)"
OUT="$HERE/results/compare-$STAMP"
mkdir -p "$HERE/results"

if [ -z "${SKIP_PEERS:-}" ]; then
  (cd "$PEERS_DIR" && ./run_peers.sh setup celery arq procrastinate rq langgraph >/dev/null)
  (cd "$PEERS_DIR" && ./run_peers.sh up)
  trap '(cd "$PEERS_DIR" && ./run_peers.sh down) || true' EXIT
  for pv in celery:prefork-c2 arq:c1000 procrastinate:c10 procrastinate:c1000 rq:simple-c1; do
    (cd "$PEERS_DIR" && ./run_peers.sh run "${pv%%:*}" --variant "${pv##*:}" --workloads B,C,D \
       --reps 1 --out "$OUT.peers.jsonl") || echo "# peer $pv failed" >&2
  done
  (cd "$PEERS_DIR" && ./run_peers.sh run langgraph --variant n10 --workloads E1,C,D --reps 1 \
     --out "$OUT.peers.jsonl") || echo "# langgraph failed" >&2
fi

if [ -z "${SKIP_PEERS:-}${SKIP_MUXI:-}" ] && [ -x /tmp/muxi-venv/bin/python ]; then
  export VENV=/tmp/muxi-venv WORK="$BENCH_SCRATCH/muxi-work"
  rm -rf "$WORK"; mkdir -p "$WORK"
  (cd "$PEERS_DIR/muxi" && ./run_muxi.sh start) && \
  timeout 120 "$VENV/bin/python" "$PEERS_DIR/muxi/async_bench.py" rate \
    --client-key cli_lab_client_key_0001 --admin-key adm_lab_admin_key_0001 \
    --kind trigger --concurrency 32 --duration 10 > "$OUT.muxi.json" || echo "# muxi failed" >&2
  (cd "$PEERS_DIR/muxi" && ./run_muxi.sh stop) || true
fi

"$PY" "$HERE/errand_bench.py" all --out "$OUT.errand.jsonl"
"$PY" "$HERE/report.py" "$OUT" | tee "$OUT.md"
