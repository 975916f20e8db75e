import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { STATE_FILE } from "./state";

export default async function globalTeardown(): Promise<void> {
  if (!existsSync(STATE_FILE)) return;
  const state = JSON.parse(readFileSync(STATE_FILE, "utf8")) as { pid: number; database: string; adminUrl: string };
  try {
    process.kill(state.pid, "SIGTERM");
  } catch {
    // already gone
  }
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(state.pid, 0);
      await new Promise((resolve) => setTimeout(resolve, 100));
    } catch {
      break;
    }
  }
  spawnSync("psql", ["-X", "-q", "-d", state.adminUrl, "-c", `drop database if exists ${state.database} with (force)`], { stdio: "inherit" });
  rmSync(STATE_FILE, { force: true });
}
