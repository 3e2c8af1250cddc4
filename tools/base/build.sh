#!/usr/bin/env bash
# Builds the base model the quickstart starts from, with instructgen commands only:
#   bash tools/base/build.sh [OUT]      (default runs/base; run it again to continue where it stopped)
# then `bash tools/base/ship.sh OUT` copies OUT/continued into src/instructgen/base_model/.
# About 75 minutes on a 2-core CPU for the first two stages (AMD EPYC, bf16), and 35 more for the
# third (Intel Xeon with AMX, one thread while the other core was busy).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-runs/base}"
IG="${INSTRUCTGEN:-instructgen}"
mkdir -p "$OUT"

[ -f "$OUT/data/card.json" ] || $IG data builtin --seed 0 --size 100000 --out "$OUT/data"
[ -f "$OUT/tokenizer/tokenizer.json" ] || $IG tokenizer train --granularity chars --vocab-size 2048 \
  --input "$OUT/data/corpus.txt" "$OUT/data/train.jsonl" --out "$OUT/tokenizer" --force --quiet
[ -f "$OUT/shards/meta.json" ] || $IG data tokenize --input "$OUT/data/corpus.txt" \
  --tokenizer "$OUT/tokenizer" --out "$OUT/shards" --force --quiet
[ -f "$OUT/init/config.json" ] || $IG model init --arch llama --config "$HERE/model.yaml" \
  --tokenizer "$OUT/tokenizer" --seed 0 --out "$OUT/init" --force

stage() {  # stage START OUT CONFIG [--data DIR]: train, or continue an interrupted run
  local resume=""
  [ -d "$2/checkpoints" ] && resume="--resume"
  $IG pretrain --model "$1" --out "$2" --config "$3" $resume --quiet "${@:4}"
}
stage "$OUT/init" "$OUT/drilled" "$HERE/drills.yaml"
stage "$OUT/drilled" "$OUT/pretrained" "$HERE/pretrain.yaml" --data "$OUT/shards"
stage "$OUT/pretrained" "$OUT/continued" "$HERE/continue.yaml" --data "$OUT/shards"
