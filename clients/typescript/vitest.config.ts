import { defineConfig } from "vitest/config";

export default defineConfig({
  esbuild: { jsx: "automatic" },
  test: {
    include: ["test/**/*.test.ts", "test/**/*.test.tsx"],
    // One live service for the whole run (test/global-setup.ts).
    globalSetup: ["test/global-setup.ts"],
    // The files share that service and its data: run them one after another so one file's
    // imports do not change what another counts.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
