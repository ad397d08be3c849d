// Copy the browser builds of npm dependencies into the git-ignored static vendor folder.
// Run after `npm ci`: `node scripts/vendor.mjs` (or `npm run vendor`).
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dest = join(root, "src", "visualizeai", "web", "static", "vendor");

// [source under node_modules, file name under static/vendor]
const FILES = [
  ["d3/dist/d3.min.js", "d3.min.js"],
  // the API documentation page (/docs)
  ["swagger-ui-dist/swagger-ui-bundle.js", "swagger-ui-bundle.js"],
  ["swagger-ui-dist/swagger-ui.css", "swagger-ui.css"],
];

export function vendor() {
  mkdirSync(dest, { recursive: true });
  for (const [src, name] of FILES) {
    const from = join(root, "node_modules", src);
    if (!existsSync(from)) {
      console.error(`missing ${from}: run \`npm ci\` first`);
      process.exit(1);
    }
    copyFileSync(from, join(dest, name));
    console.log(`vendored ${src} -> src/visualizeai/web/static/vendor/${name}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) vendor();
