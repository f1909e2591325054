#!/usr/bin/env bash
# genworkspace.sh DIR N: a workspace of N pyfiles targets (each a package of
# three small modules) and a Makefile that zips the same trees, for timing a
# no-op build against make's no-op.
set -euo pipefail
dir=$1 n=$2
mkdir -p "$dir"
{
  for i in $(seq 1 "$n"); do
    printf 'target "pyfiles" "t%d" {\n  source = "src/t%d"\n}\n\n' "$i" "$i"
  done
} > "$dir/env.hcl"
{
  printf 'ZIPS :='
  for i in $(seq 1 "$n"); do printf ' out/t%d.zip' "$i"; done
  printf '\n\nall: $(ZIPS)\n\n'
  for i in $(seq 1 "$n"); do
    printf 'out/t%d.zip: src/t%d/pkg/__init__.py src/t%d/pkg/a.py src/t%d/pkg/b.py\n\t@mkdir -p out\n\t@cd src/t%d && python3 -m zipfile -c ../../$@ pkg\n\n' "$i" "$i" "$i" "$i" "$i"
  done
} > "$dir/Makefile"
for i in $(seq 1 "$n"); do
  mkdir -p "$dir/src/t$i/pkg"
  printf '"""package %d"""\n' "$i" > "$dir/src/t$i/pkg/__init__.py"
  printf 'def f():\n    return %d\n' "$i" > "$dir/src/t$i/pkg/a.py"
  printf 'VALUE = "%d"\n' "$i" > "$dir/src/t$i/pkg/b.py"
done
