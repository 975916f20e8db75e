import { defineConfig } from "@playwright/test";

// Requests of the service worker go through Playwright's routing, so a test can take the
// network away from the worker too (setOffline alone does not reach it in Chromium).
process.env.PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS = "1";

// Headless Debian Chromium (Playwright's own browser download does not work offline)
// against a real `natter serve` with real NATS and Postgres, started by global-setup.
export default defineConfig({
  testDir: "tests/e2e",
  globalSetup: "./tests/e2e/global-setup.ts",
  globalTeardown: "./tests/e2e/global-teardown.ts",
  outputDir: "artifacts/test-results",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  workers: 2,
  retries: 0,
  reporter: [["list"]],
  // The budgets are timed alone, after every other test, on a quiet machine.
  projects: [
    { name: "app", testIgnore: /budgets\.spec\.ts/ },
    { name: "budgets", testMatch: /budgets\.spec\.ts/, dependencies: ["app"] },
  ],
  use: {
    browserName: "chromium",
    headless: true,
    launchOptions: {
      executablePath: process.env.NATTER_CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // A fake microphone (a tone), granted without asking: voice notes are recorded.
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
      ],
    },
    serviceWorkers: "allow",
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
});
