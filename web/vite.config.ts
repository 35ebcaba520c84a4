import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The build is package data of the Python package: pip users need no Node.
export default defineConfig({
  plugins: [react()],
  base: "./",
  build: {
    outDir: "../src/modalens/app/static",
    emptyOutDir: true,
    assetsDir: "assets",
    // one JS and one CSS file, so `modalens export --html` can inline them
    rollupOptions: { output: { inlineDynamicImports: true } },
    chunkSizeWarningLimit: 1000,
  },
  server: { proxy: { "/api": "http://127.0.0.1:8765" } },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
