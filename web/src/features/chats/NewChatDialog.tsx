"use client";
import { type FormEvent, useState } from "react";
import { describeProblem } from "@/api/client";
import { Dialog } from "@/components/Dialog";
import { Button, ErrorText, Field } from "@/components/form";
import { chatPath, navigate } from "@/lib/router";
import { createGroup, findByHandle, openDirect } from "./actions";

/** Start a direct chat by username, or a group with a name and members. */
export function NewChatDialog({ onClose }: { onClose: () => void }) {
  const [mode, setMode] = useState<"direct" | "group">("direct");
  const [handle, setHandle] = useState("");
  const [name, setName] = useState("");
  const [members, setMembers] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      let chatId: string;
      if (mode === "direct") {
        const user = await findByHandle(handle);
        chatId = await openDirect(user.user_id);
      } else {
        const handles = members.split(/[\s,]+/).filter(Boolean);
        const users = await Promise.all(handles.map((h) => findByHandle(h)));
        chatId = await createGroup(name.trim(), users.map((u) => u.user_id));
      }
      onClose();
      navigate(chatPath(chatId));
    } catch (problem) {
      setError(describeProblem(problem));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Dialog title="New chat" onClose={onClose}>
      <div role="tablist" aria-label="Kind of chat" className="mb-4 flex gap-2">
        {(["direct", "group"] as const).map((kind) => (
          <button
            key={kind}
            type="button"
            role="tab"
            aria-selected={mode === kind}
            onClick={() => setMode(kind)}
            className={`rounded-full px-4 py-1.5 text-sm font-medium ${mode === kind ? "bg-brand-700 text-white" : "bg-gray-100 dark:bg-gray-800"}`}
          >
            {kind === "direct" ? "Direct chat" : "New group"}
          </button>
        ))}
      </div>
      <form onSubmit={submit} className="space-y-4">
        {mode === "direct" ? (
          <Field label="Username" name="handle" required autoFocus value={handle} onChange={(e) => setHandle(e.target.value)} placeholder="@username" />
        ) : (
          <>
            <Field label="Group name" name="group_name" required autoFocus maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
            <Field label="Members" name="members" value={members} onChange={(e) => setMembers(e.target.value)} placeholder="alice, bob" hint="Usernames, separated by commas or spaces." />
          </>
        )}
        <ErrorText>{error}</ErrorText>
        <div className="flex justify-end gap-2">
          <Button variant="secondary" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" disabled={busy}>
            {mode === "direct" ? "Start chat" : "Create group"}
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
