import { NatterApp } from "@/features/app/NatterApp";

export default function Page() {
  return <NatterApp />;
}
