// Starts one `natter serve` for the browser tests: its own database, stream and subject
// prefix on the project's pinned NATS, serving the built app from web/out.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { STATE_FILE } from "./state";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (address && typeof address === "object" ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function waitReady(url: string, server: ChildProcess, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`natter serve exited with ${server.exitCode}`);
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`natter serve at ${url} was not ready in time`);
}

export default async function globalSetup(): Promise<void> {
  const binary = process.env.NATTER_BIN ?? path.join(ROOT, "target/debug/natter");
  const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const adminUrl = process.env.NATTER_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const database = `natter_test_e2e_${tag}`;
  const databaseUrl = adminUrl.replace(/\/[^/]*$/, `/${database}`);
  const created = spawnSync("psql", ["-X", "-q", "-d", adminUrl, "-c", `create database ${database}`], { stdio: "inherit" });
  if (created.status !== 0) throw new Error("could not create the test database");
  const port = await freePort();
  const baseURL = `http://localhost:${port}`;
  const env = {
    ...process.env,
    NATTER_NATS_URL: process.env.NATTER_TEST_NATS_URL ?? "nats://127.0.0.1:4333",
    NATTER_DATABASE_URL: databaseUrl,
    NATTER_STREAM: `NATTER_E2E_${tag}`,
    NATTER_SUBJECT_PREFIX: `e2e${tag}`,
    NATTER_LISTEN: `127.0.0.1:${port}`,
    NATTER_WEB_DIR: path.join(ROOT, "web/out"),
    NATTER_MEDIA_DIR: mkdtempSync(path.join(tmpdir(), "natter-e2e-media-")),
    NATTER_REGISTER_PER_ADDRESS: "100000",
    NATTER_REGISTER_PER_HANDLE: "1000",
    NATTER_LOGIN_PER_ADDRESS: "100000",
    NATTER_LOGIN_PER_HANDLE: "1000",
    NATTER_GATEWAY_PRESENCE_DEBOUNCE_MS: "500",
    NATTER_HASH_WORKERS: "2",
    RUST_LOG: process.env.RUST_LOG ?? "warn",
  };
  const migrate = spawnSync(binary, ["migrate"], { env, stdio: "inherit" });
  if (migrate.status !== 0) throw new Error("natter migrate failed");
  const server = spawn(binary, ["serve"], { env, stdio: ["ignore", "inherit", "inherit"] });
  await waitReady(baseURL, server, Date.now() + 60_000);
  writeFileSync(STATE_FILE, JSON.stringify({ pid: server.pid, database, adminUrl, baseURL }));
  process.env.NATTER_E2E_URL = baseURL;
}
