import { describe, expect, it } from "vitest";
import { chatPath, parseRoute } from "./router";

describe("routes", () => {
  it("reads a chat, with a message to open at", () => {
    expect(parseRoute("/chats/0190f3a1-7b2c", "")).toEqual({ name: "chat", chatId: "0190f3a1-7b2c", focus: null });
    expect(parseRoute("/chats/abc", "?m=1043")).toEqual({ name: "chat", chatId: "abc", focus: 1043 });
    expect(parseRoute("/chats/abc", "?m=-1")).toEqual({ name: "chat", chatId: "abc", focus: null });
  });

  it("reads invite links and settings, and anything else as home", () => {
    expect(parseRoute("/join/Xy_9", "")).toEqual({ name: "join", code: "Xy_9" });
    expect(parseRoute("/settings", "")).toEqual({ name: "settings" });
    expect(parseRoute("/chats", "")).toEqual({ name: "home" });
    expect(parseRoute("/whatever/else", "")).toEqual({ name: "home" });
    expect(parseRoute("/chats/%E0", "")).toEqual({ name: "chat", chatId: "%E0", focus: null });
  });

  it("writes what it reads", () => {
    expect(parseRoute(chatPath("a b", 7).split("?")[0] as string, "?m=7")).toEqual({ name: "chat", chatId: "a b", focus: 7 });
  });
});
