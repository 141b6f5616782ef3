// `npm run example:dynamodb` keeps working: it runs in a child process (under tsx) against dynalite and the
// KMS emulator it starts itself, and must show the stored form, the decrypted item and the caught tampering.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const EXAMPLE = fileURLToPath(new URL('../../examples/dynamodb.ts', import.meta.url))

describe('examples/dynamodb.ts', () => {
  it('encrypts, stores, decrypts and catches a changed attribute', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', EXAMPLE], { timeout: 60_000 })
    expect(stdout).toMatch(/What DynamoDB stores[^\n]*\n[^\n]*"card":\{"B":"<\d+ bytes>"\}/)
    expect(stdout).toMatch(/Read through the encrypted client:\n[^\n]*"card":\{"S":"4111 1111 1111 1111"\}/)
    expect(stdout).toContain('reading fails: ITEM_AUTHENTICATION_FAILED')
    expect(stdout).toContain('KMS calls: 1 GenerateDataKey, 1 Decrypt')
  }, 60_000)
})
