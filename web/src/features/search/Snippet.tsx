/**
 * A search snippet with its matches (between <b> and </b>) highlighted. The text is
 * rendered as text, never as HTML: a message saying "<img onerror=…>" stays words.
 */
export function Snippet({ text }: { text: string }) {
  const parts = text.split(/(<b>.*?<\/b>)/g);
  return (
    <span>
      {parts.map((part, i) =>
        part.startsWith("<b>") && part.endsWith("</b>") ? (
          <mark key={i} className="rounded bg-yellow-200 px-0.5 text-gray-900 dark:bg-yellow-600/60 dark:text-white">
            {part.slice(3, -4)}
          </mark>
        ) : (
          <span key={i}>{part}</span>
        ),
      )}
    </span>
  );
}
