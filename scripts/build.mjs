// Build the browser assets that are not committed: vendored npm libraries and the esbuild bundles.
// Run after `npm ci`: `npm run build`. Everything lands in git-ignored folders under web/static/.
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { vendor } from "./vendor.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const js = join(root, "src", "visualizeai", "web", "static", "js");
const dist = join(root, "src", "visualizeai", "web", "static", "dist");

// [entry module under static/js, bundle name under static/dist]: one self-contained ES module each.
const BUNDLES = [
  ["widget/index.js", "widget.js"],
  ["standalone/entry.js", "standalone.js"],
];

vendor();
for (const [entry, name] of BUNDLES) {
  await build({
    entryPoints: [join(js, entry)],
    outfile: join(dist, name),
    bundle: true,
    format: "esm",
    minify: true,
    target: "es2020",
    legalComments: "none",
    logLevel: "warning",
  });
  console.log(`bundled js/${entry} -> src/visualizeai/web/static/dist/${name}`);
}
