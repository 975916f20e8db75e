import { expect, signIn, signUp, test } from "./fixtures";

test("sessions are listed, and signing out everywhere signs out the other device too", async ({ browser }) => {
  const ann = await signUp(browser, "Ann");
  const laptop = await signIn(browser, ann.handle, ann.name);

  await ann.page.getByRole("button", { name: "Settings" }).click();
  const sessions = ann.page.getByRole("region", { name: "Sessions" });
  await expect(sessions.getByText("This device")).toBeVisible();
  await expect(sessions.getByRole("button", { name: /^Sign out (?!everywhere)/ }).first()).toBeVisible();

  // Profile and privacy.
  await ann.page.getByRole("textbox", { name: "About", exact: true }).fill("Climbs on Tuesdays");
  await ann.page.getByRole("button", { name: "Save profile" }).click();
  await expect(ann.page.getByText("Profile saved.")).toBeVisible();
  await ann.page.getByLabel("Who sees my last seen and online").selectOption("nobody");
  await expect(ann.page.getByLabel("Who sees my last seen and online")).toHaveValue("nobody");

  await sessions.getByRole("button", { name: "Sign out everywhere" }).click();
  await expect(ann.page.getByRole("button", { name: "Sign in" })).toBeVisible();
  await expect(laptop.page.getByRole("button", { name: "Sign in" })).toBeVisible();
  await laptop.page.reload();
  await expect(laptop.page.getByRole("button", { name: "Sign in" })).toBeVisible();

  await ann.context.close();
  await laptop.context.close();
});
