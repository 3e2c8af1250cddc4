#!/usr/bin/env bash
# Copies a finished tools/base/build.sh run (its last stage, OUT/continued) into the package as the quickstart's default start:
#   bash tools/base/ship.sh [OUT]       (default runs/base)
# The model directory's files, the metrics of every stage and the loss curve; no checkpoints.
set -euo pipefail
OUT="${1:-runs/base}"
DEST="$(cd "$(dirname "$0")/../.." && pwd)/src/instructgen/base_model"
mkdir -p "$DEST"
rm -f "$DEST"/*
find "$OUT/continued" -maxdepth 1 -type f -exec cp {} "$DEST/" \;   # every file but checkpoints/
cp "$OUT/drilled/metrics.jsonl" "$DEST/drills_metrics.jsonl"
cp "$OUT/pretrained/metrics.jsonl" "$DEST/corpus_metrics.jsonl"
cp "$(dirname "$0")/README.md" "$DEST/README.md"   # the card: recipe and figures
du -sh "$DEST"
