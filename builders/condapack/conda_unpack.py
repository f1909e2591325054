#!/bin/sh
'''true'
here=$(dirname -- "$0")
if [ -x "$here/python" ]; then exec "$here/python" "$0" "$@"; fi
exec /usr/bin/env python3 "$0" "$@"
'''
"""Make this unpacked environment work where it now lives.

The environment was packed by sparkenv for a placeholder prefix. This
script replaces that prefix, in the files listed in .sparkenv/pack.json,
by the directory it finds itself in (<prefix>/bin/conda-unpack): text files
by plain replacement, binary files inside NUL-terminated strings padded
back to their length with NUL bytes. It then records the new prefix, so the
environment may be moved and unpacked again.

Usage: bin/conda-unpack [--dry-run]
"""
import json
import os
import sys

MANIFEST = os.path.join(".sparkenv", "pack.json")


def patch_binary(data, old, new):
    out = bytearray(data)
    pos = out.find(old)
    while pos >= 0:
        end = out.find(b"\0", pos)
        if end < 0:
            end = len(out)
        seg = bytes(out[pos:end]).replace(old, new)
        out[pos:pos + len(seg)] = seg
        out[pos + len(seg):end] = b"\0" * (end - pos - len(seg))
        pos = out.find(old, end)
    return bytes(out)


def write_replacing(path, data):
    mode = os.stat(path).st_mode & 0o7777
    tmp = path + ".conda-unpack-tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def drop_bytecode(path):
    # A rewritten source makes its hash-based .pyc stale.
    d, name = os.path.split(path)
    stem = name[:-3] + "."
    cache = os.path.join(d, "__pycache__")
    if os.path.isdir(cache):
        for f in os.listdir(cache):
            if f.startswith(stem) and f.endswith(".pyc"):
                os.remove(os.path.join(cache, f))


def main(argv):
    dry = "--dry-run" in argv[1:]
    unknown = [a for a in argv[1:] if a != "--dry-run"]
    if unknown:
        sys.stderr.write(__doc__.strip().splitlines()[-1] + "\n")
        return 2
    prefix = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    mpath = os.path.join(prefix, MANIFEST)
    with open(mpath, encoding="utf-8") as f:
        manifest = json.load(f)
    old = os.fsencode(manifest["prefix"])
    new = os.fsencode(prefix)
    if old == new:
        return 0
    files = manifest["files"]
    if len(new) > len(old):
        binary = [e["path"] for e in files if e["mode"] == "binary"]
        if binary:
            sys.stderr.write(
                "conda-unpack: %s is %d bytes long; binary files such as %s can take a prefix of at most %d bytes\n"
                % (prefix, len(new), binary[0], len(old)))
            return 1
    for e in files:
        rel = e["path"]
        if os.path.isabs(rel) or ".." in rel.split("/"):
            sys.stderr.write("conda-unpack: bad path %r in %s\n" % (rel, MANIFEST))
            return 1
        path = os.path.join(prefix, rel)
        with open(path, "rb") as f:
            data = f.read()
        if e["mode"] == "binary":
            patched = patch_binary(data, old, new)
        else:
            patched = data.replace(old, new)
        if patched == data:
            continue
        if dry:
            print(rel)
            continue
        write_replacing(path, patched)
        if rel.endswith(".py"):
            drop_bytecode(path)
    if not dry:
        manifest["prefix"] = prefix
        write_replacing(mpath, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
