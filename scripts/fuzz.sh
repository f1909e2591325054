#!/usr/bin/env bash
# make fuzz: runs every Fuzz* target of the module for FUZZTIME each
# (default 30s). The normal test run already replays each target's seeds and
# the crashers kept under testdata/fuzz.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
t=${FUZZTIME:-30s}
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
  pkg="./$(dirname "${f#./}")"
  grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | while read -r name; do
    echo "== $pkg $name ($t)"
    go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime 5s
  done
done
