// Guards the browser build's promise for an application that only encrypts with a KMS RSA public key: no AWS
// SDK code, no Node built-in, and at most 12 KB (minified + gzip) before the first encrypt, bundled the way
// bench/browser-size.mjs bundles it (esbuild, code splitting; the npm run bench:size report adds the official SDK).
// This measures the source; test/package.test.ts measures the same applications on the build npm ships.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { encryptOnlyApplications, initialLoad, INITIAL_LOAD_BUDGET, NOT_FOR_ENCRYPT_ONLY } from './helpers/browser-size.js'

const browserEntry = fileURLToPath(new URL('../src/browser.ts', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'kms-envelope-size-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('browser bundle for offline encryption', () => {
  it.each(encryptOnlyApplications(browserEntry))('%s: no AWS SDK, no Node built-in, at most 12 KB before the first encrypt', async (_name, source) => {
    const { gzip, inputs, lazy } = await initialLoad(work, source)
    expect(inputs.filter((input) => /@aws-sdk|^node:|backend\/node/.test(input))).toEqual([])
    // What an encrypt-only application never needs stays out of the initial load.
    expect(inputs.filter((input) => NOT_FOR_ENCRYPT_ONLY.test(input))).toEqual([])
    expect(lazy.some((path) => path.includes('noble'))).toBe(true)
    expect(gzip).toBeLessThanOrEqual(INITIAL_LOAD_BUDGET)
  }, 20_000)
})
