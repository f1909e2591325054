#!/usr/bin/env bash
# `make demo`: builds examples/quickstart offline and shows what it produced.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sparkenv="$root/.tools/bin/sparkenv"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/examples/quickstart/." "$work/"
export SPARKENV_PKGS_DIR="$work/.pkgs"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "sparkenv validate"
"$sparkenv" -C "$work" validate

step "sparkenv plan"
"$sparkenv" -C "$work" plan || true

step "sparkenv build"
"$sparkenv" -C "$work" build

step "what it produced (dist/manifest.json)"
cat "$work/dist/manifest.json"

step "published files"
(cd "$work" && find published -type f | sort)

step "the py-files zip works with a real python"
zip=$(ls "$work"/dist/pyfiles/job/*.zip)
python3 - "$zip" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import textstats
print("imported textstats from", textstats.__file__)
print("top words:", textstats.top_words(["spark ships python", "python on spark", "spark"]))
PY

step "a second build does nothing"
"$sparkenv" -C "$work" build

step "change one source file: only what depends on it rebuilds"
echo "# touched" >> "$work/src/textstats/core.py"
"$sparkenv" -C "$work" plan || true
"$sparkenv" -C "$work" build

step "sparkenv graph"
"$sparkenv" -C "$work" graph
