// Light, dark, or the system's choice, kept in localStorage and applied as a class.
export type Theme = "system" | "light" | "dark";

const KEY = "natter.theme";

export function storedTheme(): Theme {
  const value = typeof localStorage !== "undefined" ? localStorage.getItem(KEY) : null;
  return value === "light" || value === "dark" ? value : "system";
}

export function applyTheme(theme: Theme): void {
  localStorage.setItem(KEY, theme);
  const dark = theme === "dark" || (theme === "system" && window.matchMedia("(prefers-color-scheme: dark)").matches);
  document.documentElement.classList.toggle("dark", dark);
  document.documentElement.style.colorScheme = dark ? "dark" : "light";
}

/** Follows the system's setting while the theme is "system". */
export function watchSystemTheme(): () => void {
  const query = window.matchMedia("(prefers-color-scheme: dark)");
  const onChange = () => {
    if (storedTheme() === "system") applyTheme("system");
  };
  query.addEventListener("change", onChange);
  return () => query.removeEventListener("change", onChange);
}
