import { tmpdir } from "node:os";
import path from "node:path";

/** Where global-setup leaves the server's pid and database for global-teardown. */
export const STATE_FILE = path.join(tmpdir(), `natter-e2e-${process.ppid}-${process.pid}.json`);
