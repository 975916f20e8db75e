/**
 * A search snippet with its matches (between <b> and </b>) highlighted. The text is
 * rendered as text, never as HTML: a message saying "<img onerror=…>" stays words.
 */
export function Snippet({ text }: { text: string }) {
  return (
    <span>
      {snippetParts(text).map((part, i) =>
        part.match ? (
          <mark key={i} className="rounded bg-yellow-200 px-0.5 text-gray-900 dark:bg-yellow-600/60 dark:text-white">
            {part.text}
          </mark>
        ) : (
          <span key={i}>{part.text}</span>
        ),
      )}
    </span>
  );
}

/** The snippet's text in runs, each a match or not; the markers themselves dropped. */
export function snippetParts(text: string): { text: string; match: boolean }[] {
  return text
    .split(/(<b>.*?<\/b>)/g)
    .filter(Boolean)
    .map((part) => (part.startsWith("<b>") && part.endsWith("</b>") ? { text: part.slice(3, -4), match: true } : { text: part, match: false }));
}
