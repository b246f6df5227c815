#!/bin/bash
# The figures docs/experiments.md gives for a training run, on writers it never trained on:
#   scripts/benchmark_runs.sh validation runs/NAME/NAME.safetensors NAME   -> docs/results/validation_NAME.json and
#                                                                             validation_cedar_natural_NAME.json
#   scripts/benchmark_runs.sh test runs/NAME/NAME.safetensors NAME         -> docs/results/test_NAME.json
# Validation writers choose between runs; test writers confirm the choice once (docs/results.md, "Protocol").
# DATA (default ../shared/datasets) holds the six datasets and CEDAR-natural.
set -euo pipefail
cd "$(dirname "$0")/.."
WRITERS=$1 MODEL=$2 NAME=$3
DATA=${DATA:-../shared/datasets}
PY=${PY:-.venv/bin/python}
SIX=()
for d in CEDAR GPDS BHSig260-Bengali BHSig260-Hindi SigComp2011-Dutch CNSig; do SIX+=(--data "$d=$DATA/$d"); done
BOOT=$([ "$WRITERS" = test ] && echo 1000 || echo 200)
$PY -m sigml benchmark --model "$MODEL" --writers "$WRITERS" --boot "$BOOT" --splits image_pairs "${SIX[@]}" \
    --out "docs/results/${WRITERS}_${NAME}.json" --no-progress
if [ "$WRITERS" = validation ]; then  # CEDAR's natural-shape scans (no test writers of CEDAR's in it)
    $PY -m sigml benchmark --model "$MODEL" --writers validation --boot 200 --splits image_pairs \
        --data "CEDAR-natural=$DATA/CEDAR-natural" --out "docs/results/validation_cedar_natural_${NAME}.json" --no-progress
fi
