import { describe, expect, it } from "vitest";
import { addPending, confirm, emptyTimeline, laterReceipt, merge, type Msg, newMsg, unreadDividerKey } from "./timeline";

function msg(sequence: number | null, over: Partial<Msg> = {}): Msg {
  return newMsg({
    key: sequence === null ? "c1" : `s${sequence}`,
    sequence,
    clientId: null,
    messageId: sequence === null ? null : `m${sequence}`,
    status: sequence === null ? "pending" : "stored",
    sender: "bob",
    body: `body ${sequence}`,
    sentAt: "2026-12-07T10:00:00Z",
    ...over,
  });
}

describe("merge", () => {
  it("keeps each sequence once, in stream order, whatever the arrival order", () => {
    let t = merge(emptyTimeline, [msg(5), msg(3)]);
    t = merge(t, [msg(4), msg(5), msg(3)]);
    expect(t.messages.map((m) => m.sequence)).toEqual([3, 4, 5]);
  });

  it("takes the newer fields of a message it holds", () => {
    const t = merge(merge(emptyTimeline, [msg(3)]), [msg(3, { body: "edited", edited: true })]);
    expect(t.messages).toHaveLength(1);
    expect(t.messages[0]?.body).toBe("edited");
  });

  it("keeps pending sends after stored messages", () => {
    const pending = msg(null, { key: "c-1", clientId: "c-1", sender: "ann" });
    let t = addPending(merge(emptyTimeline, [msg(1)]), pending);
    t = merge(t, [msg(2)]);
    expect(t.messages.map((m) => m.key)).toEqual(["s1", "s2", "c-1"]);
  });
});

describe("confirm", () => {
  it("moves a send into stream order under the same key", () => {
    const pending = msg(null, { key: "c-1", clientId: "c-1", sender: "ann", body: "hi" });
    let t = addPending(merge(emptyTimeline, [msg(1)]), pending);
    t = confirm(t, "c-1", 7, "m7");
    expect(t.messages.map((m) => [m.key, m.sequence, m.status])).toEqual([
      ["s1", 1, "stored"],
      ["c-1", 7, "stored"],
    ]);
    expect(t.messages[1]?.receipt).toBe("sent");
  });

  it("is not doubled when the live event came first", () => {
    const pending = msg(null, { key: "c-1", clientId: "c-1", sender: "ann", body: "hi" });
    let t = addPending(emptyTimeline, pending);
    t = merge(t, [msg(7, { sender: "ann", body: "hi", messageId: "m7" })]);
    t = confirm(t, "c-1", 7, "m7");
    expect(t.messages.map((m) => m.sequence)).toEqual([7]);
    expect(t.messages[0]?.key).toBe("c-1");
  });
});

describe("receipts and dividers", () => {
  it("never go backwards", () => {
    expect(laterReceipt("read", "delivered")).toBe("read");
    expect(laterReceipt("sent", "delivered")).toBe("delivered");
    expect(laterReceipt(null, "sent")).toBe("sent");
  });

  it("places the unread divider before the oldest unread message of others", () => {
    const messages = [msg(1), msg(2, { sender: "ann" }), msg(3), msg(4)];
    expect(unreadDividerKey(messages, "ann", 2)).toBe("s3");
    expect(unreadDividerKey(messages, "ann", 0)).toBeNull();
  });
});
