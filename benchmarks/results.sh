#!/usr/bin/env bash
# The runs behind docs/results.md: every method on the same questions with the embedded local model
# (SmolLM2-135M-Instruct through llama.cpp, 2 CPU threads), then the executor sweep for the single and
# multi topologies. Usage: bash benchmarks/results.sh [DATA_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
OUT=${2:-runs/results}
ECONASH=${ECONASH:-.venv/bin/econash}
METHODS=cot,sc,mad,moa,econash
COMMON=(--seed 0 --display plain)

$ECONASH compare --methods "$METHODS" --task arith --train-size 16 --test-size 12 --out "$OUT/arith" "${COMMON[@]}"
# Scaling: untrained econash (random settings, same prompts) so the sweep measures the topology, not training.
$ECONASH compare --methods econash-untrained --topologies single,multi --sweep-executors 1,2,3,4,6,8 \
  --task arith --test-size 12 --out "$OUT/scaling" "${COMMON[@]}"
for task in gsm8k svamp strategyqa; do
  $ECONASH compare --methods "$METHODS" --task "$task" --data "$DATA" --train-size 12 --test-size 6 \
    --out "$OUT/$task" "${COMMON[@]}"
done
