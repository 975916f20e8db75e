// The budgets of a long chat: the newest page shows within 300 ms of opening it, and
// the DOM holds at most 200 messages while scrolling through 10,000.
import { mkdirSync, writeFileSync } from "node:fs";
import { baseURL, expect, registerByApi, signIn, test, tokenFor, uniqueHandle } from "./fixtures";

const MESSAGES = Number(process.env.NATTER_E2E_LONG_CHAT ?? 10_000);

async function sendOne(token: string, chatId: string, i: number): Promise<void> {
  for (;;) {
    const response = await fetch(`${baseURL()}/v1/chats/${chatId}/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ client_id: `seed-${i}`, body: `message number ${i + 1}` }),
    });
    if (response.status === 201 || response.status === 200) return;
    // A conflict or an overloaded server: the same client_id again is stored once.
    if (response.status < 500 && response.status !== 429 && response.status !== 409) throw new Error(`seed ${i}: ${response.status}`);
  }
}

/** All but the last concurrently (in any order), then the last one alone, newest. */
async function seed(token: string, chatId: string): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < MESSAGES - 1) await sendOne(token, chatId, next++);
  };
  await Promise.all(Array.from({ length: 24 }, worker));
  await sendOne(token, chatId, MESSAGES - 1);
}

test("a chat of 10,000 messages: newest page fast, DOM small while scrolling", async ({ browser }) => {
  test.setTimeout(300_000);
  const annHandle = uniqueHandle("ann");
  const bobHandle = uniqueHandle("bob");
  const [, bobId] = await Promise.all([registerByApi(annHandle, "Ann"), registerByApi(bobHandle, "Bob")]);
  const token = await tokenFor(annHandle);
  const opened = await fetch(`${baseURL()}/v1/chats/direct`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ user_id: bobId }),
  });
  const { chat_id: chatId } = (await opened.json()) as { chat_id: string };
  const seeded = Date.now();
  await seed(token, chatId);
  const seedSeconds = (Date.now() - seeded) / 1000;

  const bob = await signIn(browser, bobHandle, "Bob");
  const row = bob.page.getByRole("list", { name: "Chat list" }).getByRole("button", { name: /Ann/ });
  await expect(row).toContainText(`message number ${MESSAGES}`, { timeout: 60_000 });

  // Opening the chat: from the click to the newest message in the DOM, timed in the page
  // (a MutationObserver), so the test runner's own round trips are not counted.
  const newestText = `message number ${MESSAGES}`;
  const openTime = bob.page.evaluate(
    (text) =>
      new Promise<number>((resolve) => {
        let clickedAt = 0;
        document.addEventListener("click", () => (clickedAt = performance.now()), { capture: true, once: true });
        const found = () => [...document.querySelectorAll("[data-message] article")].some((a) => a.getAttribute("aria-label")?.endsWith(`: ${text}`));
        const observer = new MutationObserver(() => {
          if (clickedAt && found()) {
            observer.disconnect();
            resolve(performance.now() - clickedAt);
          }
        });
        observer.observe(document.body, { childList: true, subtree: true });
      }),
    newestText,
  );
  await row.click();
  const openMs = await openTime;
  await expect(bob.page.getByRole("article").filter({ hasText: newestText })).toBeVisible();

  // Scroll back through a few thousand messages, counting message nodes on the way.
  const log = bob.page.getByRole("log", { name: "Messages" });
  const firstSequence = () => bob.page.evaluate(() => Number(document.querySelector("[data-message]")?.getAttribute("data-sequence") ?? 0));
  const newest = await firstSequence();
  let oldest = newest;
  let maxNodes = 0;
  let pages = 0;
  while (pages < 80 && newest - oldest < 3_000) {
    await log.evaluate((el) => el.scrollTo({ top: 0 }));
    await bob.page.waitForFunction(
      (before) => Number(document.querySelector("[data-message]")?.getAttribute("data-sequence") ?? before) < before,
      oldest,
      { timeout: 10_000 },
    );
    maxNodes = Math.max(maxNodes, await bob.page.locator("[data-message]").count());
    oldest = await firstSequence();
    pages++;
  }
  const budgets = { messages: MESSAGES, seed_seconds: seedSeconds, open_newest_ms: Math.round(openMs), max_message_nodes: maxNodes, scrolled_back_messages: newest - oldest };
  mkdirSync("artifacts", { recursive: true });
  writeFileSync("artifacts/budgets-browser.json", JSON.stringify(budgets, null, 2));
  console.log(`budgets: ${JSON.stringify(budgets)}`);
  expect(maxNodes).toBeLessThanOrEqual(200);
  expect(openMs).toBeLessThanOrEqual(300);
  await bob.context.close();
});
