#!/usr/bin/env bash
# make bench: the figures of BENCHMARKS.md, each measured side by side with
# its named baseline in the same run. Prints Markdown on stdout; BENCHMARKS.md
# records that output together with this command.
#
#   bash scripts/bench.sh [GROUP...]   groups: core solve install index squashfs
#                                      archive condapack pex s3 connect (default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sparkenv="$root/.tools/bin/sparkenv"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SPARKENV_PKGS_DIR="$work/pkgs"
export PATH="$root/.tools/bin:$PATH"
groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(core solve install index squashfs archive condapack pex s3 connect)

want() { local g; for g in "${groups[@]}"; do [ "$g" = "$1" ] && return 0; done; return 1; }
# Each group starts with the disk's write-back of the groups before it
# done (sync), so that it does not compete with the next measurement.
section() { sync; printf '\n## %s\n\n' "$*"; }
# gobench PKG PATTERN BENCHTIME [ARGS...]: one go test -bench run, its
# result lines in a code block.
gobench() {
  local pkg=$1 pat=$2 bt=$3; shift 3
  echo '```'
  echo "\$ go test -run '^\$' -bench '$pat' -benchtime $bt $pkg $*"
  (cd "$root" && go test -run '^$' -bench "$pat" -benchtime "$bt" -benchmem "$pkg" "$@" 2>&1) \
    | grep -E '^(Benchmark|goos|cpu)|MB/s|FAIL|panic' || true
  echo '```'
}

echo "# sparkenv benchmarks"
echo
echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(go version | cut -d' ' -f3); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."

if want core; then
  section "No-op build of 200 targets vs make (goal: under 50 ms)"
  bash "$root/scripts/genworkspace.sh" "$work/ws200" 200
  "$sparkenv" -C "$work/ws200" build >/dev/null 2>&1
  make -s -C "$work/ws200" >/dev/null
  # Past the racy-timestamp window, so the stat cache holds every input.
  sleep 3
  "$sparkenv" -C "$work/ws200" build >/dev/null 2>&1
  echo '```'
  hyperfine --style basic --warmup 3 --runs 30 \
    -n "sparkenv build (no-op, 200 targets)" "$sparkenv -C $work/ws200 build" \
    -n "make (no-op, 200 targets)" "make -s -C $work/ws200" 2>&1 | grep -E 'Benchmark|Time|Range|faster|±'
  echo '```'

  section "plan of 2,000 targets"
  bash "$root/scripts/genworkspace.sh" "$work/ws2000" 2000
  echo '```'
  hyperfine --style basic --warmup 1 --runs 10 \
    -n "sparkenv plan (2,000 targets, nothing built)" "$sparkenv -C $work/ws2000 plan" 2>&1 | grep -E 'Benchmark|Time|Range|±'
  echo '```'
fi

if want solve; then
  section "Solve: sparkenv against rattler's simpleSolve on the real snapshots (goal: faster, same answers)"
  echo "Both sides fetch the channel indexes over loopback HTTP, parse and solve, starting cold (rattler in a fresh node process whose start is not timed). The same requests are checked for identical answers by the conformance tests in internal/conda/solve."
  echo
  gobench ./internal/conda/engine 'SolveVsRattler' 3x
  echo
  echo "Whole programs, same requests, channels served on loopback by \`sparkenv serve\`: \`sparkenv solve\` against rattler's simpleSolve in node (scripts/rattler-solve.cjs), wall time and peak memory, and whether the answers are identical:"
  echo
  bash "$root/scripts/mksnapshots.sh" "$work/snaps"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$sparkenv" serve "$work/snaps" --addr "127.0.0.1:$port" >/dev/null 2>&1 &
  srv=$!
  sleep 1
  u="http://127.0.0.1:$port"
  rattler="$root/tools/npm/node_modules/@conda-org/rattler"
  echo '| request | sparkenv | rattler | same answer |'
  echo '| --- | --- | --- | --- |'
  for req in "index4|numpy" "index4|jupyter python=3.6 pandas scipy" "r,index4|r-essentials"; do
    chans=${req%%|*} specs=${req#*|}
    cflags=() ; rch=()
    for c in ${chans//,/ }; do cflags+=(-c "$u/$c"); rch+=("$u/$c"); done
    rchans=$(IFS=,; echo "${rch[*]}")
    # shellcheck disable=SC2086
    st=$( { /usr/bin/time -f '%e s, %M KB' "$sparkenv" solve "${cflags[@]}" -p linux-64 $specs > "$work/ours.txt"; } 2>&1 | tail -1)
    # shellcheck disable=SC2086
    rt=$( { /usr/bin/time -f '%e s, %M KB' node "$root/scripts/rattler-solve.cjs" "$rattler" "$rchans" linux-64,noarch $specs > "$work/theirs.txt"; } 2>&1 | tail -1)
    awk '{print $1, $2, $3}' "$work/ours.txt" | sort > "$work/a"
    grep -v '^__' "$work/theirs.txt" | sort > "$work/b"
    same=no; cmp -s "$work/a" "$work/b" && same="yes ($(wc -l < "$work/a") packages)"
    echo "| $chans: $specs | $st | $rt | $same |"
  done
  kill "$srv"
  echo
  echo "The solver alone on pre-parsed records:"
  echo
  gobench ./internal/conda/solve 'BenchmarkSolve(Index4|REssentials|Sudoku)' 5x
fi

if want install; then
  section "Install from a warm package cache vs extracting the same archives with tar (goal: within 1.5x of the floor)"
  gobench ./internal/conda/install 'BenchmarkInstall' 1x -args -install.scale=5
fi

if want index; then
  section "sparkenv index vs sha256sum over the same files (goal: within 1.2x, all cores)"
  gobench ./internal/condaindex 'BenchmarkIndex' 5x
fi

if want squashfs; then
  section "squashfs target vs plain mksquashfs of the same installed tree (goal: within 1.1x)"
  gobench ./builders/squashfs 'BenchmarkSquashfs' 5x
fi

if want archive; then
  section "Archives: tar.gz (parallel pgzip) vs tar | pigz and tar czf"
  gobench ./internal/archive 'BenchmarkTarGz' 3x
fi

if want condapack; then
  section "conda_pack vs tar | pigz and tar czf on the same environment (goal: faster than both at equal level)"
  gobench ./builders/condapack 'BenchmarkCondaPack' 1x
fi

if want pex; then
  section "venv_pack and pex build times for the same wheels"
  gobench ./builders/pex 'Benchmark' 3x
  gobench ./builders/venvpack 'Benchmark' 3x
fi

if want s3; then
  section "S3 publish of 1 GB in 50 files vs one PUT of the same bytes (versitygw on loopback)"
  gobench ./publishers/s3 'BenchmarkPublish1GB' 1x
fi

if want connect; then
  section "Spark Connect push of a 200 MB archive vs the same bytes in one plain gRPC stream (goal: within 1.2x)"
  echo "push: the client against the test server, which checks every CRC and writes the artifact to disk as Spark does; push-to-discard: the same client against a server that drops what it reads, like the raw stream's."
  echo
  gobench ./runtime/connect 'BenchmarkPush(200MB|ToDiscard200MB)' 5x -count 3
fi
