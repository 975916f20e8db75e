// Writes the service worker into the static export (out/sw.js): src/sw/sw.js with every
// file of the export as the app shell, and their digest as its version, so each build
// installs a new worker with a new cache.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT = path.join(WEB, "out");

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : [full];
  });
}

const digest = createHash("sha256");
const shell = ["/"];
for (const file of files(OUT).sort()) {
  const relative = path.relative(OUT, file).split(path.sep).join("/");
  if (relative === "sw.js" || relative === "404.html") continue;
  digest.update(relative).update(readFileSync(file));
  // Pages are served at their path without .html (index.html at /, taken above).
  if (relative.endsWith(".html")) {
    if (relative !== "index.html") shell.push(`/${relative.replace(/(\/index)?\.html$/, "")}`);
  } else {
    shell.push(`/${relative}`);
  }
}
const version = digest.digest("hex").slice(0, 16);
const template = readFileSync(path.join(WEB, "src/sw/sw.js"), "utf8");
const worker = template.replace('"__VERSION__"', JSON.stringify(version)).replace("__SHELL__", JSON.stringify(shell));
writeFileSync(path.join(OUT, "sw.js"), worker);
console.log(`sw.js: ${shell.length} files in the app shell, version ${version}`);
