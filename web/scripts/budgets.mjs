#!/usr/bin/env node
// Prints the web app's budgets and fails when one is over: the JavaScript of the first
// load (gzipped), and the long-chat figures the browser test measured.
import { existsSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const JS_BUDGET = 250 * 1024;
const html = readFileSync("out/index.html", "utf8");
const scripts = [...new Set([...html.matchAll(/<script[^>]*src="([^"]+\.js)"/g)].map((m) => m[1]))];
let gzipped = 0;
for (const src of scripts) gzipped += gzipSync(readFileSync(`out${src}`), { level: 9 }).length;
const lines = [`first-load JavaScript: ${(gzipped / 1024).toFixed(1)} KiB gzipped in ${scripts.length} files (budget ${JS_BUDGET / 1024} KiB)`];
let failed = gzipped > JS_BUDGET;
if (existsSync("artifacts/budgets-browser.json")) {
  const b = JSON.parse(readFileSync("artifacts/budgets-browser.json", "utf8"));
  lines.push(`open a chat of ${b.messages} messages: newest page in ${b.open_newest_ms} ms (budget 300 ms)`);
  lines.push(`message nodes in the DOM while scrolling back over ${b.scrolled_back_messages} sequences: at most ${b.max_message_nodes} (budget 200)`);
  failed ||= b.open_newest_ms > 300 || b.max_message_nodes > 200;
} else {
  lines.push("browser budgets: not measured (run the browser tests first)");
}
for (const line of lines) console.log(`[budgets] ${line}`);
process.exit(failed ? 1 : 0);
