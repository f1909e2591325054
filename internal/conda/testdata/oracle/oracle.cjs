// A line-oriented bridge to the @conda-org/rattler npm package, used by
// sparkenv's conformance tests. Each stdin line is a JSON request; each
// answer is one JSON line on stdout, in request order.
//   {"op":"compare","a":"1.0","b":"1.0.0"}              -> {"r":0}
//   {"op":"matches","spec":">=1","version":"1.2","mode":"strict"} -> {"r":true}
//   {"op":"solve","specs":[...],"channels":[...],"platforms":[...]}  -> {"records":[...]}
// Any failure answers {"err":"..."}.
"use strict";
const path = require("path");
const readline = require("readline");

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: node oracle.cjs RATTLER_PACKAGE_DIR\n");
  process.exit(2);
}
const rattler = require(path.resolve(dir, "dist", "rattler.node.cjs"));

const specCache = new Map();
function versionSpec(spec, mode) {
  const key = mode + "\u0000" + spec;
  let s = specCache.get(key);
  if (s === undefined) {
    try {
      s = { spec: new rattler.VersionSpec(spec, mode) };
    } catch (e) {
      s = { err: String(e) };
    }
    specCache.set(key, s);
  }
  if (s.err !== undefined) throw new Error(s.err);
  return s.spec;
}

function big(x) {
  return typeof x === "bigint" ? Number(x) : x;
}

async function handle(req) {
  switch (req.op) {
    case "compare": {
      const a = new rattler.Version(req.a);
      const b = new rattler.Version(req.b);
      try {
        return { r: a.compare(b) };
      } finally {
        a.free();
        b.free();
      }
    }
    case "parse": {
      const v = new rattler.Version(req.a);
      try {
        return { r: v.toString() };
      } finally {
        v.free();
      }
    }
    case "matches": {
      const s = versionSpec(req.spec, req.mode || "strict");
      const v = new rattler.Version(req.version);
      try {
        return { r: s.matches(v), canon: s.toString() };
      } finally {
        v.free();
      }
    }
    case "solve": {
      const out = await rattler.simpleSolve(req.specs, req.channels, req.platforms, req.locked || []);
      return {
        records: out.map((p) => ({
          name: p.packageName,
          version: p.version,
          build: p.build,
          build_number: big(p.buildNumber),
          subdir: p.subdir,
          url: p.url,
          filename: p.filename,
          depends: p.depends || [],
        })),
      };
    }
    default:
      throw new Error("unknown op " + req.op);
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
let chain = Promise.resolve();
rl.on("line", (line) => {
  if (line.trim() === "") return;
  chain = chain.then(async () => {
    let res;
    try {
      res = await handle(JSON.parse(line));
    } catch (e) {
      res = { err: String(e && e.message !== undefined ? e.message : e) };
    }
    process.stdout.write(JSON.stringify(res) + "\n");
  });
});
rl.on("close", () => {
  chain.then(() => process.exit(0));
});
