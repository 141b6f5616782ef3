import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // Several tests wait on real components (the KMS emulator with the AWS SDK's own retry backoff, up to
    // 3 s by design; Chromium; child processes). vitest's 5 s default leaves too little room on a cold or
    // busy CI machine; a test that hangs still fails, after 20 s.
    testTimeout: 20_000,
    hookTimeout: 60_000,
  },
})
