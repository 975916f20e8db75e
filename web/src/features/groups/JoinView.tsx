"use client";
import { useState } from "react";
import { describeProblem } from "@/api/client";
import { Button, ErrorText } from "@/components/form";
import { chatPath, navigate } from "@/lib/router";
import { joinByInvite } from "@/features/chats/actions";

/** An invite link opened: join the group it names. */
export function JoinView({ code }: { code: string }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <section aria-label="Join a group" className="flex h-full flex-col items-center justify-center gap-4 bg-gray-50 p-6 text-center dark:bg-gray-900">
      <h2 className="text-xl font-semibold">You were invited to a group</h2>
      <p className="text-sm text-gray-600 dark:text-gray-400">Join to see its messages and take part.</p>
      <ErrorText>{error}</ErrorText>
      <div className="flex gap-2">
        <Button variant="secondary" onClick={() => navigate("/")}>
          Not now
        </Button>
        <Button
          disabled={busy}
          onClick={() => {
            setBusy(true);
            joinByInvite(code)
              .then((chatId) => navigate(chatPath(chatId), { replace: true }))
              .catch((problem: unknown) => setError(describeProblem(problem)))
              .finally(() => setBusy(false));
          }}
        >
          Join group
        </Button>
      </div>
    </section>
  );
}
