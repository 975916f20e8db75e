export default function NotFound() {
  return (
    <main className="flex h-full flex-col items-center justify-center gap-4 p-8 text-center">
      <h1 className="text-2xl font-semibold">Page not found</h1>
      <a className="text-brand-600 underline dark:text-brand-500" href="/">
        Open Natter
      </a>
    </main>
  );
}
