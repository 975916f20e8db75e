import type { ComponentProps } from "react";
import { Icon, type IconName } from "./Icon";

/** A round button with an icon; `label` is its accessible name and its tooltip. */
export function IconButton({ icon, label, className = "", ...rest }: { icon: IconName; label: string } & ComponentProps<"button">) {
  return (
    <button
      type="button"
      aria-label={label}
      title={label}
      className={`inline-flex h-10 w-10 items-center justify-center rounded-full text-gray-600 hover:bg-gray-200 focus-visible:outline-2 focus-visible:outline-brand-600 dark:text-gray-300 dark:hover:bg-gray-800 ${className}`}
      {...rest}
    >
      <Icon name={icon} />
    </button>
  );
}
