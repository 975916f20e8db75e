"use client";
// A chat's gallery, loaded the first time it opens: its photos and videos, documents
// and links on three tabs, newest first, each paged back as it is scrolled to its end
// (or by "Load more"). Photos and videos open in the viewer, stepping through the tab's.
import { type KeyboardEvent, lazy, Suspense, useCallback, useEffect, useId, useRef, useState } from "react";
import { describeProblem, type Message } from "@/api/client";
import { Button, ErrorText } from "@/components/form";
import { IconButton } from "@/components/IconButton";
import { useApp } from "@/lib/app-state";
import { DocumentCard, VisualTile } from "@/features/media/MediaAttachment";
import { type Shelf, shelfPage } from "./actions";
import { linkParts } from "./links";

const Viewer = lazy(() => import("@/features/media/Viewer"));

const SHELVES: { shelf: Shelf; label: string; empty: string }[] = [
  { shelf: "media", label: "Media", empty: "No photos or videos yet." },
  { shelf: "documents", label: "Docs", empty: "No documents yet." },
  { shelf: "links", label: "Links", empty: "No links yet." },
];

export default function Gallery({ chatId, onBack }: { chatId: string; onBack: () => void }) {
  const [selected, setSelected] = useState<Shelf>("media");
  const [opened, setOpened] = useState<Shelf[]>(["media"]);
  const back = useRef<HTMLButtonElement>(null);
  const tabs = useRef(new Map<Shelf, HTMLButtonElement>());
  const id = useId();

  useEffect(() => back.current?.focus(), []);

  const select = (shelf: Shelf) => {
    setSelected(shelf);
    setOpened((held) => (held.includes(shelf) ? held : [...held, shelf]));
    tabs.current.get(shelf)?.focus();
  };
  // Tabs as the ARIA pattern has them: one tab stop, the arrow keys, Home and End.
  const onKeyDown = (event: KeyboardEvent) => {
    const at = SHELVES.findIndex((s) => s.shelf === selected);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: SHELVES.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    select((SHELVES[(to + SHELVES.length) % SHELVES.length] as (typeof SHELVES)[number]).shelf);
  };

  return (
    <aside aria-label="Media, links and docs" className="flex h-full flex-col bg-white dark:bg-gray-900">
      <header className="flex items-center gap-2 bg-gray-100 px-2 py-2 dark:bg-gray-800">
        <IconButton ref={back} icon="back" label="Back to chat info" onClick={onBack} />
        <h2 className="font-medium">Media, links and docs</h2>
      </header>
      <div role="tablist" aria-label="Gallery" onKeyDown={onKeyDown} className="flex border-b border-gray-200 dark:border-gray-800">
        {SHELVES.map(({ shelf, label }) => (
          <button
            key={shelf}
            ref={(button) => void (button ? tabs.current.set(shelf, button) : tabs.current.delete(shelf))}
            type="button"
            role="tab"
            id={`${id}-${shelf}-tab`}
            aria-selected={selected === shelf}
            aria-controls={`${id}-${shelf}-panel`}
            tabIndex={selected === shelf ? 0 : -1}
            onClick={() => select(shelf)}
            className={`flex-1 border-b-2 px-3 py-2.5 text-sm font-medium focus-visible:outline-2 focus-visible:-outline-offset-2 focus-visible:outline-brand-600 ${selected === shelf ? "border-brand-700 text-brand-700 dark:border-brand-500 dark:text-brand-500" : "border-transparent text-gray-600 hover:bg-gray-50 dark:text-gray-400 dark:hover:bg-gray-800"}`}
          >
            {label}
          </button>
        ))}
      </div>
      {SHELVES.map(({ shelf, empty }) => (
        <div
          key={shelf}
          role="tabpanel"
          id={`${id}-${shelf}-panel`}
          aria-labelledby={`${id}-${shelf}-tab`}
          hidden={selected !== shelf}
          tabIndex={0}
          className="min-h-0 flex-1 overflow-y-auto p-3 focus-visible:outline-2 focus-visible:-outline-offset-2 focus-visible:outline-brand-600"
        >
          {opened.includes(shelf) && <ShelfItems chatId={chatId} shelf={shelf} empty={empty} />}
        </div>
      ))}
    </aside>
  );
}

interface Held {
  items: Message[];
  hasMore: boolean;
  loading: boolean;
  error: string | null;
}

/** A shelf's messages as far back as paged, newest first, and `more` to page on. */
function useShelf(chatId: string, shelf: Shelf): Held & { more: () => void } {
  const [held, setHeld] = useState<Held>({ items: [], hasMore: true, loading: true, error: null });
  const oldest = useRef<number | undefined>(undefined);
  const busy = useRef(false);
  const more = useCallback(() => {
    if (busy.current) return;
    busy.current = true;
    setHeld((h) => ({ ...h, loading: true, error: null }));
    shelfPage(chatId, shelf, oldest.current)
      .then((page) => {
        oldest.current = page.items.at(-1)?.sequence ?? oldest.current;
        setHeld((h) => {
          const known = new Set(h.items.map((m) => m.sequence));
          return { items: [...h.items, ...page.items.filter((m) => !known.has(m.sequence))], hasMore: page.hasMore, loading: false, error: null };
        });
      })
      .catch((problem: unknown) => setHeld((h) => ({ ...h, loading: false, error: describeProblem(problem) })))
      .finally(() => (busy.current = false));
  }, [chatId, shelf]);
  useEffect(more, [more]);
  return { ...held, more };
}

function ShelfItems({ chatId, shelf, empty }: { chatId: string; shelf: Shelf; empty: string }) {
  const { items, hasMore, loading, error, more } = useShelf(chatId, shelf);
  const [viewing, setViewing] = useState<string | null>(null);
  const media = items.flatMap((m) => (m.attachment?.type === "media" ? [{ mediaId: m.attachment.media_id, kind: m.attachment.kind, message: m }] : []));

  return (
    <>
      {shelf === "media" ? (
        <ul className="grid grid-cols-3 gap-1" aria-label="Photos and videos">
          {media.map(({ mediaId, kind, message }) => (
            <li key={message.sequence}>
              <VisualTile
                mediaId={mediaId}
                kind={kind}
                onOpen={() => setViewing(mediaId)}
                className="aspect-square w-full rounded focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-brand-600 dark:bg-white/10"
              />
            </li>
          ))}
        </ul>
      ) : shelf === "documents" ? (
        <ul className="space-y-3" aria-label="Documents">
          {media.map(({ mediaId, message }) => (
            <li key={message.sequence}>
              <DocumentCard mediaId={mediaId} />
              <Sent message={message} />
            </li>
          ))}
        </ul>
      ) : (
        <ul className="space-y-3" aria-label="Links">
          {items.map((message) => (
            <li key={message.sequence} className="rounded-md bg-gray-50 p-2 dark:bg-gray-800">
              <LinkedText text={message.body} />
              <Sent message={message} />
            </li>
          ))}
        </ul>
      )}
      {!loading && !error && items.length === 0 && <p className="py-6 text-center text-sm text-gray-600 dark:text-gray-400">{empty}</p>}
      {loading && (
        <p role="status" className="py-3 text-center text-sm text-gray-600 dark:text-gray-400">
          Loading…
        </p>
      )}
      <ErrorText>{error}</ErrorText>
      {hasMore && !loading && <LoadMore onMore={more} auto={!error} />}
      {viewing && (
        <Suspense fallback={null}>
          <Viewer
            chatId={chatId}
            mediaId={viewing}
            items={media.map((m) => m.mediaId)}
            onClose={() => setViewing(null)}
          />
        </Suspense>
      )}
    </>
  );
}

/** A button that pages on when pressed, or (`auto`) as soon as it is scrolled into view. */
function LoadMore({ onMore, auto }: { onMore: () => void; auto: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const watched = ref.current;
    if (!watched || !auto) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) onMore();
    });
    observer.observe(watched);
    return () => observer.disconnect();
  }, [onMore, auto]);
  return (
    <div ref={ref} className="flex justify-center py-3">
      <Button variant="secondary" onClick={onMore}>
        Load more
      </Button>
    </div>
  );
}


/** A message's text, its web addresses as links that open in a new tab. */
function LinkedText({ text }: { text: string }) {
  return (
    <p className="text-sm break-words whitespace-pre-wrap">
      {linkParts(text).map((part, i) =>
        part.href ? (
          <a key={i} href={part.href} target="_blank" rel="noopener noreferrer" className="text-brand-700 underline dark:text-brand-500">
            {part.text}
          </a>
        ) : (
          <span key={i}>{part.text}</span>
        ),
      )}
    </p>
  );
}

/** Who sent a shelf's message, and when. */
function Sent({ message }: { message: Message }) {
  const me = useApp((s) => s.me?.user_id);
  const sender = useApp((s) => (message.sender === me ? "You" : (s.users[message.sender]?.display_name ?? "…")));
  return (
    <p className="mt-1 text-xs text-gray-600 dark:text-gray-400">
      {sender} · <time dateTime={message.sent_at}>{new Date(message.sent_at).toLocaleDateString()}</time>
    </p>
  );
}
