#!/usr/bin/env bash
# Leave-one-dataset-out: what a user with a new scanner and population gets.
#
#   scripts/leave_one_out.sh NAME [--finetune]
#   RECIPE=ms scripts/leave_one_out.sh NAME [--finetune]
#
# 1. trains on the five other datasets' training writers (configs/leave_one_out.json; thresholds from their
#    validation writers), then benchmarks on ALL writers of NAME at the model's own thresholds;
# 2. with --finetune, also: fine-tunes that model on NAME's training writers (configs/finetune.json, thresholds
#    recalibrated on NAME's validation writers), trains a model on NAME alone (configs/single_dataset.json), and
#    benchmarks the three on NAME's test writers.
# Every step is resumable (re-run the script: finished steps are skipped, an interrupted training resumes).
# Data: SIGVER_DATA (default ../shared/datasets); outputs: runs/lodo_NAME/ and docs/results/lodo/.
# RECIPE=ms uses the shipped model's architecture and levers from scratch (the regional head, aspect jitter,
# CEDAR-natural as a source unless NAME is CEDAR, whose writers it holds): configs/leave_one_out_ms.json (6 x 400
# steps, 4 of them at half size), then configs/ms_full.json (3 x 400 at full size) as the shipped model's second
# stage; fine-tuning and the single-dataset model use configs/*_ms.json. Outputs: runs/lodo_ms_NAME/,
# docs/results/lodo_ms/.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME="${1:?usage: scripts/leave_one_out.sh NAME [--finetune]}"
FINETUNE="${2:-}"
DATA="${SIGVER_DATA:-../shared/datasets}"
PY="${PY:-.venv/bin/python}"
ALL=(CEDAR GPDS BHSig260-Bengali BHSig260-Hindi SigComp2011-Dutch CNSig)
RECIPE="${RECIPE:-}"
SUFFIX="${RECIPE:+_$RECIPE}"
RUN="runs/lodo${SUFFIX}_${NAME}"
OUT="docs/results/lodo${SUFFIX}"
mkdir -p "$RUN" "$OUT"

others=()
for d in "${ALL[@]}"; do [ "$d" = "$NAME" ] || others+=(--data "$d=$DATA/$d"); done
if [ "$RECIPE" = "ms" ] && [ "$NAME" != "CEDAR" ]; then others+=(--data "CEDAR-natural=$DATA/CEDAR-natural"); fi

train() {  # train OUT.safetensors [args...]: skipped when OUT exists, resumed when interrupted
    local out="$1"; shift
    [ -f "$out" ] && { echo "have $out"; return; }
    "$PY" -m sigml train "$@" --out "$out" --workdir "${out%.safetensors}_work" --resume --no-progress
}
bench() {  # bench MODEL WRITERS JSON
    [ -f "$3" ] && { echo "have $3"; return; }
    "$PY" -m sigml benchmark --model "$1" --data "$NAME=$DATA/$NAME" --writers "$2" --no-progress --out "$3" --markdown "${3%.json}.md"
}

without="$RUN/without_${NAME}.safetensors"
if [ "$RECIPE" = "ms" ]; then  # the shipped model's two stages: mostly at half size, then configs/ms_full.json
    first="$RUN/without_${NAME}_lowres.safetensors"
    train "$first" --config configs/leave_one_out_ms.json "${others[@]}"
    bench "$first" all "$OUT/without_${NAME}_lowres_on_all_${NAME}.json"
    train "$without" --config configs/ms_full.json --init "$first" "${others[@]}"
else
    train "$without" --config configs/leave_one_out.json "${others[@]}"
fi
bench "$without" all "$OUT/without_${NAME}_on_all_${NAME}.json"

if [ "$FINETUNE" = "--finetune" ]; then
    tuned="$RUN/finetuned_${NAME}.safetensors"
    alone="$RUN/only_${NAME}.safetensors"
    train "$tuned" --config "configs/finetune${SUFFIX}.json" --init "$without" --data "$NAME=$DATA/$NAME"
    for m in "$without" "$tuned"; do
        bench "$m" test "$OUT/$(basename "${m%.safetensors}")_on_${NAME}_test.json"
    done
    train "$alone" --config "configs/single_dataset${SUFFIX}.json" --data "$NAME=$DATA/$NAME"
    bench "$alone" test "$OUT/$(basename "${alone%.safetensors}")_on_${NAME}_test.json"
fi
