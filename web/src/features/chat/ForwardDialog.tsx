"use client";
import { Dialog } from "@/components/Dialog";
import { useApp } from "@/lib/app-state";
import { chatTitle } from "@/features/chats/actions";
import { forward } from "./actions";
import type { Msg } from "./timeline";

/** Forwards a message to another chat. */
export function ForwardDialog({ chatId, message, onClose }: { chatId: string; message: Msg; onClose: () => void }) {
  const chats = useApp((s) => s.chats) ?? [];
  const users = useApp((s) => s.users);
  return (
    <Dialog title="Forward message to" onClose={onClose}>
      <ul className="space-y-1">
        {chats.map((chat) => (
          <li key={chat.chat_id}>
            <button
              type="button"
              className="w-full rounded-lg px-3 py-2 text-left hover:bg-gray-100 dark:hover:bg-gray-800"
              onClick={() => {
                if (message.sequence !== null) void forward(chatId, message.sequence, chat.chat_id);
                onClose();
              }}
            >
              {chatTitle(chat, users)}
            </button>
          </li>
        ))}
      </ul>
    </Dialog>
  );
}
