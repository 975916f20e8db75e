"use client";
import { type FormEvent, useState } from "react";
import { describeProblem } from "@/api/client";
import { Button, ErrorText, Field } from "@/components/form";
import { register, signIn } from "@/lib/auth";

/** Sign in, or create an account. */
export function AuthScreen({ notice }: { notice: string | null }) {
  const [mode, setMode] = useState<"signin" | "register">("signin");
  const [handle, setHandle] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === "signin") await signIn(handle.trim(), password);
      else await register(handle.trim(), displayName.trim() || handle.trim(), password);
    } catch (problem) {
      setError(describeProblem(problem));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="flex min-h-full items-center justify-center p-4">
      <div className="w-full max-w-sm rounded-2xl bg-white p-6 shadow-md dark:bg-gray-900">
        <h1 className="mb-1 text-3xl font-bold text-brand-700 dark:text-brand-500">Natter</h1>
        <p className="mb-6 text-sm text-gray-600 dark:text-gray-400">{mode === "signin" ? "Sign in to chat." : "Create your account."}</p>
        {notice && (
          <p role="status" className="mb-4 rounded-lg bg-amber-100 px-3 py-2 text-sm text-amber-900 dark:bg-amber-900/40 dark:text-amber-100">
            {notice}
          </p>
        )}
        <form onSubmit={submit} className="space-y-4">
          <Field label="Username" name="handle" autoComplete="username" required value={handle} onChange={(e) => setHandle(e.target.value)} autoFocus />
          {mode === "register" && (
            <Field label="Your name" name="display_name" autoComplete="name" value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
          )}
          <Field
            label="Password"
            name="password"
            type="password"
            autoComplete={mode === "signin" ? "current-password" : "new-password"}
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            hint={mode === "register" ? "At least 8 characters." : undefined}
          />
          <ErrorText>{error}</ErrorText>
          <Button type="submit" disabled={busy} className="w-full">
            {mode === "signin" ? "Sign in" : "Create account"}
          </Button>
        </form>
        <p className="mt-4 text-center text-sm">
          {mode === "signin" ? "New to Natter? " : "Have an account? "}
          <button
            type="button"
            className="font-semibold text-brand-700 underline dark:text-brand-500"
            onClick={() => {
              setMode(mode === "signin" ? "register" : "signin");
              setError(null);
            }}
          >
            {mode === "signin" ? "Create an account" : "Sign in"}
          </button>
        </p>
      </div>
    </main>
  );
}
