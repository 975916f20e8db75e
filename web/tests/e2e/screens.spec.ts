// Every screen scanned with axe-core (no serious or critical violations), and
// screenshots of the main screens, light and dark, phone and desktop, as artefacts.
import { expect, newPage, registerByApi, scan, send, signIn, startDirectChat, test, uniqueHandle } from "./fixtures";

const SHOTS = "artifacts/screenshots";

const SIZES = [
  { name: "desktop", viewport: { width: 1280, height: 800 } },
  { name: "phone", viewport: { width: 390, height: 844 } },
] as const;

for (const scheme of ["light", "dark"] as const) {
  for (const size of SIZES) {
    test(`screens pass axe and are captured: ${scheme}, ${size.name}`, async ({ browser }) => {
      const options = { viewport: size.viewport, colorScheme: scheme };
      const signedOut = await newPage(browser, options);
      await signedOut.page.goto("/");
      await expect(signedOut.page.getByRole("button", { name: "Sign in" })).toBeVisible();
      await scan(signedOut.page, "sign in");
      await signedOut.page.screenshot({ path: `${SHOTS}/sign-in-${scheme}-${size.name}.png` });
      await signedOut.page.getByRole("button", { name: "Create an account" }).click();
      await scan(signedOut.page, "register");
      await signedOut.context.close();

      const annHandle = uniqueHandle("ann");
      const bobHandle = uniqueHandle("bob");
      await Promise.all([registerByApi(annHandle, "Ann Lee"), registerByApi(bobHandle, "Bob Stone")]);
      const ann = await signIn(browser, annHandle, "Ann Lee", options);
      if (size.name === "desktop") await scan(ann.page, "empty chat list");
      await startDirectChat(ann, bobHandle);
      for (const text of ["Hi Bob! Are we still on for Tuesday?", "I booked the wall from 7", "Bring the blue rope 🧗"]) await send(ann, text);
      await expect(ann.page.getByRole("img", { name: "Sent" }).nth(2)).toBeVisible();
      await scan(ann.page, "chat view");
      await ann.page.screenshot({ path: `${SHOTS}/chat-${scheme}-${size.name}.png` });

      await ann.page.getByRole("button", { name: "Chat info" }).click();
      await expect(ann.page.getByRole("complementary", { name: "Chat info" })).toBeVisible();
      await scan(ann.page, "chat info");
      await ann.page.getByRole("button", { name: "Media, links and docs" }).click();
      await expect(ann.page.getByRole("complementary", { name: "Media, links and docs" }).getByText("No photos or videos yet.")).toBeVisible();
      await scan(ann.page, "gallery");
      await ann.page.getByRole("button", { name: "Back to chat info" }).click();
      await ann.page.getByRole("button", { name: "Close chat info" }).click();

      if (size.name === "phone") await ann.page.getByRole("button", { name: "Back to chats" }).click();
      await expect(ann.page.getByRole("list", { name: "Chat list" })).toBeVisible();
      await scan(ann.page, "chat list");
      await ann.page.screenshot({ path: `${SHOTS}/chat-list-${scheme}-${size.name}.png` });

      await ann.page.getByRole("button", { name: "New chat" }).click();
      await scan(ann.page, "new chat dialog");
      await ann.page.getByRole("button", { name: "Close" }).click();

      await ann.page.getByRole("button", { name: "Settings" }).click();
      await expect(ann.page.getByRole("region", { name: "Sessions" })).toBeVisible();
      await scan(ann.page, "settings");
      await ann.page.screenshot({ path: `${SHOTS}/settings-${scheme}-${size.name}.png` });

      await ann.page.goto("/join/nosuchcode");
      await expect(ann.page.getByRole("button", { name: "Join group" })).toBeVisible();
      await scan(ann.page, "join");
      await ann.context.close();
    });
  }
}
