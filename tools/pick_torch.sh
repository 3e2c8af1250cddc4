#!/bin/sh
# Print the pip requirement for torch: a CPU wheel found in pip's find-links folders
# (machines without a GPU often keep one there), else plain "torch".
links="${PIP_FIND_LINKS:-} $(pip config get global.find-links 2>/dev/null || true)"
tag="cp$(python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
for dir in $links; do
  dir="${dir#file://}"
  for wheel in "$dir"/torch-*+cpu-"$tag"-*.whl; do
    [ -f "$wheel" ] && { echo "$wheel"; exit 0; }
  done
done
echo torch
