// The budgets of a long chat: the newest page shows within 300 ms of opening it, and
// the DOM holds at most 200 messages while scrolling through 10,000.
import { mkdirSync, writeFileSync } from "node:fs";
import { baseURL, expect, registerByApi, signIn, test, tokenFor, uniqueHandle } from "./fixtures";

const MESSAGES = Number(process.env.NATTER_E2E_LONG_CHAT ?? 10_000);

async function seed(token: string, chatId: string): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < MESSAGES) {
      const i = next++;
      for (;;) {
        const response = await fetch(`${baseURL()}/v1/chats/${chatId}/messages`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ client_id: `seed-${i}`, body: `message number ${i + 1}` }),
        });
        if (response.status === 201 || response.status === 200) break;
        if (response.status < 500 && response.status !== 429 && response.status !== 409) throw new Error(`seed ${i}: ${response.status}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 24 }, worker));
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

  // Opening the chat: from the click to the newest message on screen.
  const started = await bob.page.evaluate(() => performance.now());
  await row.click();
  await expect(bob.page.getByRole("article").filter({ hasText: `message number ${MESSAGES}` })).toBeVisible();
  const openMs = (await bob.page.evaluate(() => performance.now())) - started;

  // Scroll back through a few thousand messages, counting message nodes on the way.
  const log = bob.page.getByRole("log", { name: "Messages" });
  let maxNodes = 0;
  let oldestSeen = MESSAGES;
  for (let i = 0; i < 60 && oldestSeen > MESSAGES - 2_000; i++) {
    await log.evaluate((el) => el.scrollTo({ top: 0 }));
    await bob.page.waitForFunction(
      (before) => {
        const first = document.querySelector("[data-message] article")?.getAttribute("aria-label") ?? "";
        const n = Number(/message number (\d+)/.exec(first)?.[1] ?? before);
        return n < before;
      },
      oldestSeen,
      { timeout: 10_000 },
    );
    const state = await bob.page.evaluate(() => {
      const nodes = document.querySelectorAll("[data-message]");
      const first = nodes[0]?.querySelector("article")?.getAttribute("aria-label") ?? "";
      return { nodes: nodes.length, first: Number(/message number (\d+)/.exec(first)?.[1] ?? 0) };
    });
    maxNodes = Math.max(maxNodes, state.nodes);
    oldestSeen = state.first;
  }
  const budgets = { messages: MESSAGES, seed_seconds: seedSeconds, open_newest_ms: Math.round(openMs), max_message_nodes: maxNodes, scrolled_back_to: oldestSeen };
  mkdirSync("artifacts", { recursive: true });
  writeFileSync("artifacts/budgets-browser.json", JSON.stringify(budgets, null, 2));
  console.log(`budgets: ${JSON.stringify(budgets)}`);
  expect(maxNodes).toBeLessThanOrEqual(200);
  expect(openMs).toBeLessThanOrEqual(300);
  await bob.context.close();
});
