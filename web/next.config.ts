import type { NextConfig } from "next";

// A static export: `natter serve` serves `out/` from the API's own origin, so there is
// no Node server in production and no CORS.
const config: NextConfig = {
  output: "export",
  reactStrictMode: true,
  poweredByHeader: false,
  images: { unoptimized: true },
  productionBrowserSourceMaps: false,
};

export default config;
