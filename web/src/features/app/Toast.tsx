"use client";
import { useEffect } from "react";
import { store, useApp } from "@/lib/app-state";

/** A short message at the bottom, gone after a few seconds. */
export function Toast() {
  const notice = useApp((s) => s.notice);
  useEffect(() => {
    if (!notice) return;
    const timer = setTimeout(() => store.set((s) => ({ ...s, notice: null })), 4000);
    return () => clearTimeout(timer);
  }, [notice]);
  return (
    <div role="status" aria-live="polite" className="pointer-events-none fixed inset-x-0 bottom-20 flex justify-center">
      {notice && <p className="rounded-lg bg-gray-900 px-4 py-2 text-sm text-white shadow-lg dark:bg-gray-100 dark:text-gray-900">{notice}</p>}
    </div>
  );
}
