import { describe, expect, it } from "vitest";
import { snippetParts } from "./Snippet";

describe("search snippets", () => {
  it("splits matches from the text around them", () => {
    expect(snippetParts("see you at the <b>climbing</b> wall, <b>climbing</b>")).toEqual([
      { text: "see you at the ", match: false },
      { text: "climbing", match: true },
      { text: " wall, ", match: false },
      { text: "climbing", match: true },
    ]);
  });

  it("keeps markup that is not a match marker as text", () => {
    expect(snippetParts('<img src=x onerror="alert(1)"> <b>hi</b>')).toEqual([
      { text: '<img src=x onerror="alert(1)"> ', match: false },
      { text: "hi", match: true },
    ]);
  });
});
