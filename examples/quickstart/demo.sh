#!/usr/bin/env bash
# `make demo`: builds examples/quickstart offline and shows what it produced.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sparkenv="$root/.tools/bin/sparkenv"
work=$(mktemp -d)
mnt=""
cleanup() {
  if [ -n "$mnt" ] && mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cp -r "$root/examples/quickstart/." "$work/"
export SPARKENV_PKGS_DIR="$work/.pkgs"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a local conda channel for the example (python 3.11 from this machine, small noarch packages)"
(cd "$root" && go run ./testdata/cmd/mkchannel "$work/channel")
find "$work/channel" -name '*.conda' -o -name '*.tar.bz2' | sed "s|$work/||" | sort

step "sparkenv validate"
"$sparkenv" -C "$work" validate

step "sparkenv lock: solve environment.etl and write sparkenv.lock.json"
"$sparkenv" -C "$work" lock
"$sparkenv" -C "$work" lock --export explicit etl | sed "s|file://$work|file://…|"

step "sparkenv plan"
"$sparkenv" -C "$work" plan || true

step "sparkenv build"
"$sparkenv" -C "$work" build

step "what it produced (dist/)"
(cd "$work/dist" && find . -type f | sort)
python3 - "$work/dist/manifest.json" <<'PY'
import json, sys
for a in json.load(open(sys.argv[1]))["artifacts"]:
    for f in a["files"]:
        print(f'{a["address"]:28} {f["path"]:24} {f["size"]:>10} bytes  sha256:{f["sha256"][:16]}…')
PY

step "published files (content-addressed names; latest.json written last)"
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

step "the squashfs image: what is inside"
img="$work/dist/squashfs/image/image.sqfs"
unsquashfs -l -d /opt/conda "$img" | grep -E '/bin/python3.11$|wordcount/__init__|__pycache__/__init__.*pyc' | head -5
echo "… $(unsquashfs -l "$img" | wc -l) paths, $(du -h "$img" | cut -f1)"

if [ "$(id -u)" = 0 ] && [ -e /dev/fuse ] && command -v squashfuse >/dev/null && [ ! -e /opt/conda ]; then
  step "mount it at /opt/conda (as a node's init script would) and run its python"
  mkdir -p /opt/conda && mnt=/opt/conda
  squashfuse "$img" /opt/conda
  /opt/conda/bin/python3.11 -c 'import sys, wordcount; print(sys.prefix, dict(wordcount.count(["Spark ships Python", "python"])))'
  fusermount3 -u /opt/conda && rmdir /opt/conda && mnt=""
fi

step "spark-submit wiring for the archive, as published (YARN, cluster mode)"
"$sparkenv" -C "$work" spark-args target.conda_pack.etl target.pyfiles.job --via publish.local.site --master yarn --deploy-mode cluster 2>/dev/null | sed "s|$work|…|g"

step "what an executor does with it: unpack into ./environment and run its python"
exe=$(mktemp -d)
mkdir "$exe/environment" && tar -xzf "$work/dist/conda_pack/etl/etl.tar.gz" -C "$exe/environment"
(cd "$exe" && ./environment/bin/python -c 'import sys, wordcount; print(sys.prefix, dict(wordcount.count(["Spark on YARN"])))')
rm -rf "$exe"

step "a second build does nothing"
"$sparkenv" -C "$work" build

step "change one source file: only what depends on it rebuilds"
echo "# touched" >> "$work/src/textstats/core.py"
"$sparkenv" -C "$work" plan || true
"$sparkenv" -C "$work" build

step "sparkenv graph"
"$sparkenv" -C "$work" graph
