// A message's text cut into plain text and the web addresses in it, as the gallery's
// Links shelf shows them (the server shelves a message whose text holds `http(s)://`).

export interface TextPart {
  text: string;
  /** The address to open, for a link; only `http:` and `https:` are linked. */
  href?: string;
}

const ADDRESS = /https?:\/\/[^\s<>"]+/gi;
/** Punctuation that ends a sentence, not the address it follows. */
const TRAILING = /[.,;:!?'"]+$/;

function trimmed(address: string): string {
  let kept = address.replace(TRAILING, "");
  // A closing bracket belongs to the address only if it opened one: "(see https://a.b/c)".
  while (kept.endsWith(")") && (kept.match(/\(/g)?.length ?? 0) < (kept.match(/\)/g)?.length ?? 0)) {
    kept = kept.slice(0, -1).replace(TRAILING, "");
  }
  return kept;
}

export function linkParts(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let from = 0;
  for (const match of text.matchAll(ADDRESS)) {
    const address = trimmed(match[0]);
    if (!URL.canParse(address)) continue;
    if (match.index > from) parts.push({ text: text.slice(from, match.index) });
    parts.push({ text: address, href: address });
    from = match.index + address.length;
  }
  if (from < text.length) parts.push({ text: text.slice(from) });
  return parts;
}
