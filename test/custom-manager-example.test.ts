// `npm run example:custom-manager` keeps working: it runs in a child process (under tsx) against the KMS
// emulator it starts itself, and must show the round trip and the three refusals, the last one without a KMS call.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const EXAMPLE = fileURLToPath(new URL('../examples/custom-manager.ts', import.meta.url))

describe('examples/custom-manager.ts', () => {
  it('encrypts and decrypts for an allowed tenant and refuses the others, the last before any KMS call', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', EXAMPLE], { timeout: 60_000 })
    expect(stdout).toMatch(/Encrypted for tenant acme: \d+ bytes; context keys tenant, policy-version, aws-crypto-public-key/)
    expect(stdout).toContain('Decrypted by a reader that allows acme: "invoice #1001"')
    expect(stdout).toContain('Encrypting without a tenant: ENCRYPTION_CONTEXT_MISMATCH: The encryption context names no tenant.')
    expect(stdout).toContain('Encrypting for tenant initech: ENCRYPTION_CONTEXT_MISMATCH: Tenant "initech" is not allowed here.')
    expect(stdout).toContain(`Decrypting globex's message with the acme reader: ENCRYPTION_CONTEXT_MISMATCH: Tenant "globex" is not allowed here. (0 KMS calls)`)
  }, 60_000)
})
