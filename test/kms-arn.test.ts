import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  assertMrksAreUnique,
  ConfigurationError,
  formatKmsArn,
  isKmsArn,
  isMultiRegionKey,
  KmsRsaKeyring,
  mrkMatch,
  parseKmsArn,
  parseKmsKeyArn,
  type KmsArn,
} from '../src/index.js'
import { assertKmsIdentifier, withRegion } from '../src/keyrings/kms-arn.js'

const KEY = 'arn:aws:kms:us-east-1:2222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab'
const MRK = 'arn:aws:kms:us-east-1:2222222222222:key/mrk-4321abcd12ab34cd56ef1234567890ab'
const MRK_REPLICA = 'arn:aws:kms:eu-west-1:2222222222222:key/mrk-4321abcd12ab34cd56ef1234567890ab'
const ALIAS = 'arn:aws:kms:us-west-2:111122223333:alias/test-key'

// spec: framework/aws-kms/aws-kms-key-arn.md#a-valid-aws-kms-arn
describe('KMS ARN: known good', () => {
  it.each([
    [KEY, { partition: 'aws', region: 'us-east-1', accountId: '2222222222222', resourceType: 'key', resourceId: '1234abcd-12ab-34cd-56ef-1234567890ab' }],
    [MRK, { partition: 'aws', region: 'us-east-1', accountId: '2222222222222', resourceType: 'key', resourceId: 'mrk-4321abcd12ab34cd56ef1234567890ab' }],
    [ALIAS, { partition: 'aws', region: 'us-west-2', accountId: '111122223333', resourceType: 'alias', resourceId: 'test-key' }],
    ['arn:aws-cn:kms:cn-north-1:111122223333:key/k', { partition: 'aws-cn', region: 'cn-north-1', accountId: '111122223333', resourceType: 'key', resourceId: 'k' }],
    // spec: any additional "/" are included in the resource id
    ['arn:aws:kms:us-east-1:111122223333:alias/team/app', { partition: 'aws', region: 'us-east-1', accountId: '111122223333', resourceType: 'alias', resourceId: 'team/app' }],
    ['arn:aws:kms:us-east-1:111122223333:key//', { partition: 'aws', region: 'us-east-1', accountId: '111122223333', resourceType: 'key', resourceId: '/' }],
  ])('%s', (arn, parts) => {
    expect(parseKmsArn(arn)).toEqual({ service: 'kms', ...parts })
    expect(isKmsArn(arn)).toBe(true)
    expect(formatKmsArn(parseKmsArn(arn))).toBe(arn)
  })
})

describe('KMS ARN: known bad, each breaking one rule', () => {
  it.each([
    ['empty string', '', /separators/],
    ['four separators', 'arn:aws:kms:us-east-1:key/abc', /4 ":" separators/],
    ['six separators', `${KEY}:extra`, /6 ":" separators/],
    ['does not start with arn', 'arx:aws:kms:us-east-1:111122223333:key/abc', /does not start with "arn"/],
    ['empty partition', 'arn::kms:us-east-1:111122223333:key/abc', /partition is empty/],
    ['service is not kms', 'arn:aws:s3:us-east-1:111122223333:key/abc', /service is "s3"/],
    ['empty Region', 'arn:aws:kms::111122223333:key/abc', /Region is empty/],
    ['empty account', 'arn:aws:kms:us-east-1::key/abc', /account is empty/],
    ['empty resource', 'arn:aws:kms:us-east-1:111122223333:', /resource section is empty/],
    ['resource without "/"', 'arn:aws:kms:us-east-1:111122223333:key', /no "\/"/],
    ['resource type neither key nor alias', 'arn:aws:kms:us-east-1:111122223333:keys/abc', /resource type is "keys"/],
    ['empty resource type', 'arn:aws:kms:us-east-1:111122223333:/abc', /resource type is ""/],
    ['empty resource id', 'arn:aws:kms:us-east-1:111122223333:key/', /resource id is empty/],
    ['uppercase prefix', 'ARN:aws:kms:us-east-1:111122223333:key/abc', /does not start with "arn"/],
  ])('%s', (_rule, arn, message) => {
    expect(() => parseKmsArn(arn)).toThrow(ConfigurationError)
    expect(() => parseKmsArn(arn)).toThrow(message)
    expect(isKmsArn(arn)).toBe(false)
  })

  it('a non-string is refused, and isKmsArn never throws', () => {
    expect(() => parseKmsArn(42 as never)).toThrow(ConfigurationError)
    expect(isKmsArn(undefined)).toBe(false)
    expect(isKmsArn({})).toBe(false)
  })

  it('a very long bad ARN is cut short in the message', () => {
    const long = `x${'a'.repeat(10_000)}`
    const error = (() => {
      try {
        parseKmsArn(long)
      } catch (caught) {
        return caught as Error
      }
      throw new Error('expected a throw')
    })()
    expect(error.message.length).toBeLessThan(400)
  })

  it('an alias ARN where a key ARN is required says so', () => {
    expect(() => parseKmsKeyArn(ALIAS)).toThrow(ConfigurationError)
    expect(() => parseKmsKeyArn(ALIAS)).toThrow(/alias ARN/)
    expect(parseKmsKeyArn(KEY).resourceType).toBe('key')
  })

  it('errors name the input after `what` when it is given, and only then', () => {
    expect(() => parseKmsArn('alias/app', 'KmsRsaKeyring keyId')).toThrow(/^KmsRsaKeyring keyId "alias\/app" is not a valid AWS KMS ARN: it has 0 ":" separators/)
    expect(() => parseKmsArn('alias/app')).toThrow(/^"alias\/app" is not a valid AWS KMS ARN/)
    expect(() => parseKmsKeyArn(42 as never, 'The keyId')).toThrow(/^The keyId must be a string; got number\.$/)
    expect(() => parseKmsKeyArn(42 as never)).toThrow(/^A KMS ARN must be a string; got number\.$/)
    expect(() => parseKmsKeyArn(ALIAS, 'The keyId')).toThrow(/^The keyId must name a key, but .* is an alias ARN/)
    expect(() => parseKmsKeyArn(ALIAS)).toThrow(/^A KMS key ARN must name a key, but .* is an alias ARN/)
    // KmsRsaKeyring names its option.
    const construct = (keyId: unknown) => () => new KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256' } as never)
    expect(construct('1234abcd-12ab-34cd-56ef-1234567890ab')).toThrow(/^KmsRsaKeyring keyId "1234abcd-12ab-34cd-56ef-1234567890ab" is not a valid AWS KMS ARN/)
    expect(construct(undefined)).toThrow(/^KmsRsaKeyring keyId must be a string; got undefined\.$/)
    expect(construct(ALIAS)).toThrow(/^KmsRsaKeyring keyId must name a key, but .* is an alias ARN/)
  })
})

// spec: framework/aws-kms/aws-kms-key-arn.md#identifying-an-an-aws-kms-multi-region-identifier
describe('assertKmsIdentifier', () => {
  it('accepts key and alias ARNs, alias names and key ids', () => {
    for (const identifier of [KEY, MRK, ALIAS, 'alias/test-key', '1234abcd-12ab-34cd-56ef-1234567890ab', 'mrk-4321abcd']) {
      expect(() => assertKmsIdentifier(identifier), identifier).not.toThrow()
    }
  })

  it('refuses what is none of them, saying what it got', () => {
    const cases: [unknown, string][] = [
      ['', 'The generator must be a non-empty string; got an empty string.'],
      [5, 'The generator must be a non-empty string; got number.'],
      [undefined, 'The generator must be a non-empty string; got undefined.'],
      ['alias/', 'The generator "alias/" names no alias.'],
      ['key 1', 'The generator "key 1" is neither a KMS ARN, an alias (alias/…) nor a key id.'],
      ['key/1234', 'The generator "key/1234" is neither a KMS ARN, an alias (alias/…) nor a key id.'],
      ['us-east-1:1234', 'The generator "us-east-1:1234" is neither a KMS ARN, an alias (alias/…) nor a key id.'],
    ]
    for (const [identifier, message] of cases) {
      expect(() => assertKmsIdentifier(identifier, 'The generator'), String(identifier)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIGURATION', message }))
    }
    expect(() => assertKmsIdentifier('arn:aws:kms:us-east-1:111122223333:key/'), 'an ARN is parsed').toThrow(ConfigurationError)
    expect(() => assertKmsIdentifier('')).toThrow('A KMS key identifier must be a non-empty string; got an empty string.')
  })
})

describe('isMultiRegionKey', () => {
  it.each([
    [MRK, true],
    [KEY, false],
    [ALIAS, false],
    ['arn:aws:kms:us-west-2:111122223333:alias/mrk-looks-like-one', false],
    ['mrk-4321abcd12ab34cd56ef1234567890ab', true],
    ['1234abcd-12ab-34cd-56ef-1234567890ab', false],
    ['alias/mrk-test', false],
    ['alias/test', false],
  ] as const)('%s -> %s', (identifier, expected) => {
    expect(isMultiRegionKey(identifier)).toBe(expected)
  })

  it('an invalid ARN is an error, not false; so is an identifier that is no string', () => {
    expect(() => isMultiRegionKey('arn:aws:kms:us-east-1:key/mrk-1')).toThrow(ConfigurationError)
    for (const identifier of [undefined, 42, { keyId: MRK }]) expect(() => isMultiRegionKey(identifier as never)).toThrow(ConfigurationError)
  })
})

// spec: framework/aws-kms/aws-kms-mrk-match-for-decrypt.md#implementation
describe('mrkMatch', () => {
  it.each([
    ['identical single-Region keys', KEY, KEY, true],
    ['single-Region key in another Region', KEY, KEY.replace('us-east-1', 'eu-west-1'), false],
    ['replicas of one multi-Region key', MRK, MRK_REPLICA, true],
    ['multi-Region key in another account', MRK, MRK_REPLICA.replace('2222222222222', '3333333333333'), false],
    ['multi-Region key in another partition', MRK, MRK_REPLICA.replace('arn:aws:', 'arn:aws-cn:'), false],
    ['different multi-Region keys', MRK, MRK_REPLICA.replace('mrk-4321', 'mrk-9999'), false],
    ['multi-Region and single-Region key', MRK, KEY, false],
    ['aliases named mrk- in two Regions', 'arn:aws:kms:us-east-1:1:alias/mrk-a', 'arn:aws:kms:eu-west-1:1:alias/mrk-a', false],
    ['identical bare multi-Region key ids', 'mrk-abc', 'mrk-abc', true],
    ['bare multi-Region key id against its ARN', 'mrk-4321abcd12ab34cd56ef1234567890ab', MRK, false],
  ] as const)('%s', (_name, a, b, expected) => {
    expect(mrkMatch(a, b)).toBe(expected)
    expect(mrkMatch(b, a)).toBe(expected)
  })

  it('an invalid ARN is an error', () => {
    expect(() => mrkMatch(MRK, 'arn:aws:kms:eu-west-1:key/mrk-1')).toThrow(ConfigurationError)
  })
})

// spec: framework/aws-kms/aws-kms-mrk-are-unique.md#implementation
describe('assertMrksAreUnique', () => {
  it('passes lists without repeated multi-Region keys', () => {
    expect(() => assertMrksAreUnique([])).not.toThrow()
    expect(() => assertMrksAreUnique([KEY, KEY, ALIAS])).not.toThrow()
    expect(() => assertMrksAreUnique([MRK, MRK_REPLICA.replace('mrk-4321', 'mrk-9999'), KEY])).not.toThrow()
    expect(() => assertMrksAreUnique(['arn:aws:kms:us-east-1:1:alias/mrk-a', 'arn:aws:kms:eu-west-1:1:alias/mrk-a'])).not.toThrow()
  })

  it('names every identifier of every repeated key', () => {
    const otherMrk = 'arn:aws:kms:us-east-1:2222222222222:key/mrk-other'
    const otherReplica = otherMrk.replace('us-east-1', 'us-west-2')
    const run = () => assertMrksAreUnique([MRK, KEY, MRK_REPLICA, otherMrk, otherReplica, 'mrk-other'])
    expect(run).toThrow(ConfigurationError)
    const message = (() => {
      try {
        run()
      } catch (error) {
        return (error as Error).message
      }
      return ''
    })()
    for (const identifier of [MRK, MRK_REPLICA, otherMrk, otherReplica, 'mrk-other']) expect(message).toContain(identifier)
    expect(message).not.toContain(KEY)
  })

  it('refuses what is not an array of identifiers rather than pass it', () => {
    expect(() => assertMrksAreUnique(MRK as unknown as string[])).toThrow(`assertMrksAreUnique takes an array of key identifiers; got "${MRK}".`)
    expect(() => assertMrksAreUnique(undefined as unknown as string[])).toThrow(ConfigurationError)
    expect(() => assertMrksAreUnique([MRK, 7 as unknown as string])).toThrow(ConfigurationError)
  })

  it('the same multi-Region ARN twice is a duplicate too', () => {
    expect(() => assertMrksAreUnique([MRK, MRK])).toThrow(ConfigurationError)
  })
})

/** Non-empty strings without ":" (the only character the ARN rules reserve in every part). */
const part = fc.string({ minLength: 1, maxLength: 20 }).filter((text) => !text.includes(':'))
const arnParts = fc.record({
  partition: part,
  service: fc.constant('kms' as const),
  region: part,
  accountId: part,
  resourceType: fc.constantFrom('key' as const, 'alias' as const),
  resourceId: part,
})

describe('KMS ARN properties', () => {
  it('format then parse gives back the parts, and parse then format the text', () => {
    fc.assert(
      fc.property(arnParts, (parts: KmsArn) => {
        const text = formatKmsArn(parts)
        expect(parseKmsArn(text)).toEqual(parts)
        expect(formatKmsArn(parseKmsArn(text))).toBe(text)
      }),
    )
  })

  it('formatKmsArn refuses parts that make no ARN parseKmsArn takes back, saying which', () => {
    fc.assert(
      fc.property(
        arnParts,
        fc.constantFrom('partition', 'service', 'region', 'accountId', 'resourceType', 'resourceId'),
        fc.constantFrom('', 'a:b', undefined, null, 7, 'key/x', 'sqs'),
        (parts, name, value) => {
          const changed = { ...parts, [name]: value } as unknown as KmsArn
          let text: string | undefined
          try {
            text = formatKmsArn(changed)
          } catch (error) {
            expect(error).toBeInstanceOf(ConfigurationError)
            expect((error as Error).message).toMatch(/^formatKmsArn/)
            return
          }
          // What it does return parses back to the same parts.
          expect(parseKmsArn(text)).toEqual(changed)
        },
      ),
    )
    const parts = parseKmsArn(MRK)
    expect(() => formatKmsArn({ ...parts, region: '' })).toThrow('formatKmsArn: these parts make no valid AWS KMS ARN: its Region is empty.')
    expect(() => formatKmsArn({ ...parts, accountId: undefined } as unknown as KmsArn)).toThrow('formatKmsArn: accountId must be a string; got undefined.')
    expect(() => formatKmsArn({ ...parts, region: 'us:east' })).toThrow('formatKmsArn: region "us:east" holds a ":"')
    expect(() => formatKmsArn({ ...parts, resourceType: 'key/x' } as unknown as KmsArn)).toThrow('formatKmsArn: resourceType must be "key" or "alias"; got "key/x".')
    expect(() => formatKmsArn(null as unknown as KmsArn)).toThrow(ConfigurationError)
  })

  it('a ":" added anywhere makes a valid ARN invalid', () => {
    fc.assert(
      fc.property(arnParts, fc.nat(), (parts, at) => {
        const text = formatKmsArn(parts)
        const position = at % (text.length + 1)
        expect(isKmsArn(text.slice(0, position) + ':' + text.slice(position))).toBe(false)
      }),
    )
  })

  /** Pairs that share most parts, so matches are common enough to test. */
  const related = fc
    .record({
      a: arnParts,
      mrkA: fc.boolean(),
      mrkB: fc.boolean(),
      region: fc.constantFrom('us-east-1', 'eu-west-1'),
      account: fc.constantFrom('1', '2'),
      partition: fc.constantFrom('aws', 'aws-cn'),
      type: fc.constantFrom('key' as const, 'alias' as const),
    })
    .map(({ a, mrkA, mrkB, region, account, partition, type }) => {
      const first = { ...a, resourceId: (mrkA ? 'mrk-' : '') + a.resourceId }
      const second = { ...first, region, accountId: account, partition, resourceType: type, resourceId: (mrkB ? 'mrk-' : '') + a.resourceId }
      return [formatKmsArn(first), formatKmsArn(second)] as const
    })

  it('mrkMatch is symmetric', () => {
    fc.assert(fc.property(related, ([a, b]) => mrkMatch(a, b) === mrkMatch(b, a)))
  })

  it('a key that is not multi-Region matches only an identical ARN', () => {
    fc.assert(
      fc.property(related, ([a, b]) => {
        if (isMultiRegionKey(a) && isMultiRegionKey(b)) return
        expect(mrkMatch(a, b)).toBe(a === b)
      }),
    )
  })

  it('a multi-Region key matches itself in every Region, and no other account or partition', () => {
    fc.assert(
      fc.property(arnParts, part, part, (parts, region, account) => {
        const mrk = { ...parts, resourceType: 'key' as const, resourceId: `mrk-${parts.resourceId}` }
        const arn = formatKmsArn(mrk)
        expect(mrkMatch(arn, withRegion(mrk, region))).toBe(true)
        expect(mrkMatch(arn, formatKmsArn({ ...mrk, region, accountId: account }))).toBe(account === mrk.accountId)
        expect(mrkMatch(arn, formatKmsArn({ ...mrk, partition: `${mrk.partition}x` }))).toBe(false)
      }),
    )
  })
})
