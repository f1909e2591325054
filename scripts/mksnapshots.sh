#!/usr/bin/env bash
# mksnapshots.sh DIR: lays the shared real repodata snapshots out as
# channels under DIR (index4: conda-index4.json split per subdir; r and
# pytorch: their linux-64 repodata and an empty noarch).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="$root/../shared/conda-data"
out=$1
python3 - "$data" "$out" <<'PY'
import json, os, sys
data, out = sys.argv[1], sys.argv[2]
def write(ch, sd, pk):
    os.makedirs(os.path.join(out, ch, sd), exist_ok=True)
    with open(os.path.join(out, ch, sd, "repodata.json"), "w") as f:
        json.dump({"info": {"subdir": sd}, "packages": pk}, f)
idx = json.load(open(os.path.join(data, "conda-index4.json")))
for sd in ("linux-64", "noarch"):
    write("index4", sd, {k: v for k, v in idx.items() if v.get("subdir") == sd})
for ch, fn in (("r", "r-linux-64.repodata.json"), ("pytorch", "pytorch-linux-64.repodata.json")):
    os.makedirs(os.path.join(out, ch, "linux-64"), exist_ok=True)
    with open(os.path.join(data, fn)) as src, open(os.path.join(out, ch, "linux-64", "repodata.json"), "w") as dst:
        dst.write(src.read())
    write(ch, "noarch", {})
PY
