"use client";
import { useEffect, useState } from "react";
import { IconButton } from "@/components/IconButton";
import { applyTheme, storedTheme, type Theme } from "@/lib/theme";

const NEXT: Record<Theme, Theme> = { system: "dark", dark: "light", light: "system" };

/** Cycles the theme: system, dark, light. */
export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>("system");
  useEffect(() => setTheme(storedTheme()), []);
  const label = { system: "Theme: follows the system (switch to dark)", dark: "Theme: dark (switch to light)", light: "Theme: light (follow the system)" }[theme];
  return (
    <IconButton
      icon={theme === "dark" ? "moon" : "sun"}
      label={label}
      onClick={() => {
        const next = NEXT[theme];
        applyTheme(next);
        setTheme(next);
      }}
    />
  );
}
