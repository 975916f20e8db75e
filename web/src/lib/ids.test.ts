import { describe, expect, it } from "vitest";
import { newClientId, noteServerDate, uuidV7 } from "./ids";

const made = (id: string) => parseInt(id.replaceAll("-", "").slice(0, 12), 16);

describe("client ids", () => {
  it("makes UUIDv7s that begin with their time", () => {
    // RFC 9562's example: 2022-02-22 19:22:22 UTC.
    const id = uuidV7(1_645_557_742_000);
    expect(id).toMatch(/^017f22e2-79b0-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(uuidV7(1_645_557_742_000)).not.toBe(id);
  });

  it("dates them by the server's clock once a response told it", () => {
    expect(newClientId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4/);
    // The local clock runs ten minutes ahead of the server's.
    const local = Date.parse("2026-12-07T16:10:00.000Z");
    noteServerDate("Mon, 07 Dec 2026 16:00:00 GMT", local);
    noteServerDate("not a date", local);
    const id = newClientId(local + 1_000);
    expect(id[14]).toBe("7");
    expect(made(id)).toBe(Date.parse("2026-12-07T16:00:01.500Z"));
  });
});
