#!/usr/bin/env bash
# make bench: the figures of BENCHMARKS.md, each measured side by side with
# its baseline in the same run. Prints Markdown; BENCHMARKS.md records the
# output with the command that produced it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sparkenv="$root/.tools/bin/sparkenv"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SPARKENV_PKGS_DIR="$work/pkgs"

echo "# sparkenv benchmarks"
echo
echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); $(go version | cut -d' ' -f3)."
echo

section() { printf '\n## %s\n\n' "$*"; }

section "No-op build of 200 targets vs make (goal: under 50 ms)"
bash "$root/scripts/genworkspace.sh" "$work/ws200" 200
"$sparkenv" -C "$work/ws200" build >/dev/null
make -s -C "$work/ws200" >/dev/null
# Let the racy-timestamp window pass so that the stat cache holds every input.
sleep 3
"$sparkenv" -C "$work/ws200" build >/dev/null
hyperfine --style basic --warmup 3 --runs 30 --export-markdown "$work/noop.md" \
  -n "sparkenv build (no-op, 200 targets)" "$sparkenv -C $work/ws200 build" \
  -n "make (no-op, 200 targets)" "make -s -C $work/ws200" >/dev/null
cat "$work/noop.md"

section "plan of 2,000 targets"
bash "$root/scripts/genworkspace.sh" "$work/ws2000" 2000
hyperfine --style basic --warmup 1 --runs 10 --export-markdown "$work/plan.md" \
  -n "sparkenv plan (2,000 targets, nothing built)" "$sparkenv -C $work/ws2000 plan" >/dev/null
cat "$work/plan.md"

for extra in "$root"/scripts/bench.d/*.sh; do
  [ -e "$extra" ] || continue
  bash "$extra" "$work"
done
