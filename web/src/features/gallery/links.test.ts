import { describe, expect, it } from "vitest";
import { linkParts } from "./links";

describe("links in a message", () => {
  it("cuts out each address, leaving the text around it", () => {
    expect(linkParts("the topo: https://example.com/wall?x=1 and http://b.example")).toEqual([
      { text: "the topo: " },
      { text: "https://example.com/wall?x=1", href: "https://example.com/wall?x=1" },
      { text: " and " },
      { text: "http://b.example", href: "http://b.example" },
    ]);
  });

  it("leaves a sentence's punctuation and an unopened bracket out of the address", () => {
    expect(linkParts("see https://example.com/a. Or (https://example.com/b), or https://en.example/Foo_(bar)!")).toEqual([
      { text: "see " },
      { text: "https://example.com/a", href: "https://example.com/a" },
      { text: ". Or (" },
      { text: "https://example.com/b", href: "https://example.com/b" },
      { text: "), or " },
      { text: "https://en.example/Foo_(bar)", href: "https://en.example/Foo_(bar)" },
      { text: "!" },
    ]);
  });

  it("links nothing but http and https", () => {
    expect(linkParts("javascript:alert(1) ftp://example.com")).toEqual([{ text: "javascript:alert(1) ftp://example.com" }]);
  });
});
