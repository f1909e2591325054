// rattler-solve.cjs RATTLER_DIR CHANNELS PLATFORMS SPEC...: solves with the
// npm build of rattler (a real conda implementation) and prints one
// "name version build" line per record, for timing and memory comparisons
// with `sparkenv solve`. CHANNELS and PLATFORMS are comma-separated.
const path = require("path");
const [dir, channels, platforms, ...specs] = process.argv.slice(2);
const rattler = require(path.resolve(dir, "dist", "rattler.node.cjs"));
rattler
  .simpleSolve(specs, channels.split(","), platforms.split(","), [])
  .then((recs) => {
    for (const r of recs) console.log(`${r.packageName} ${r.version} ${r.build}`);
  })
  .catch((e) => {
    console.error(String(e));
    process.exit(1);
  });
