/**
 * kms-envelope/testing: a local AWS KMS emulator for tests and demos (Node only).
 *
 * @example
 * ```ts
 * import { startKmsEmulator } from 'kms-envelope/testing'
 * const kms = await startKmsEmulator({ regions: ['us-east-1', 'eu-west-1'] })
 * const primary = kms.createKey({ region: 'us-east-1', multiRegion: true })
 * kms.replicateKey(primary.arn, 'eu-west-1')
 * // new KMSClient({ region: 'eu-west-1', endpoint: kms.endpoint, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' } })
 * ```
 */
export {
  startKmsEmulator,
  type KmsCall,
  type KmsEmulator,
  type KmsEmulatorCreateKeyOptions,
  type KmsEmulatorKey,
  type KmsEmulatorOptions,
} from './kms-emulator.js'
export type { KmsCallFilter, KmsDenyFilter, KmsFaultInjector } from './kms-faults.js'
export type { EmulatedKeySpec as KmsEmulatorKeySpec } from './kms-crypto.js'
