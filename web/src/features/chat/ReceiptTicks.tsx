import { Icon } from "@/components/Icon";
import type { Msg } from "./timeline";

/** The state of the user's own message: a clock, one tick, two grey ticks, two blue. */
export function ReceiptTicks({ message }: { message: Msg }) {
  if (message.status === "failed") {
    return (
      <span role="img" aria-label="Not sent" className="text-red-600">
        <Icon name="alert" className="h-4 w-4" />
      </span>
    );
  }
  if (message.status === "pending") {
    return (
      <span role="img" aria-label="Sending" className="text-gray-500 dark:text-gray-400">
        <Icon name="clock" className="h-3.5 w-3.5" />
      </span>
    );
  }
  const receipt = message.receipt ?? "sent";
  const label = { sent: "Sent", delivered: "Delivered", read: "Read" }[receipt];
  const color = receipt === "read" ? "text-tick-read" : "text-gray-500 dark:text-gray-400";
  return (
    <span role="img" aria-label={label} data-receipt={receipt} className={color}>
      <svg aria-hidden="true" viewBox="0 0 18 12" className="h-3 w-4 fill-none stroke-current" strokeWidth="1.8">
        <path d={receipt === "sent" ? "M3 6.5 6.5 10 14 2" : "M1 6.5 4.5 10 12 2M6.5 8.5 8 10 15.5 2"} />
      </svg>
    </span>
  );
}
