/** The kafkajs version check, without a Kafka. */
import { describe, expect, it, vi } from 'vitest'
import { checkKafkajsVersion } from '../../src/adapters/kafka/index.js'

describe('the installed kafkajs', () => {
  it.each(['2.2.0', '2.2.4', '2.3.1'])('accepts %s', (version) => {
    expect(() => checkKafkajsVersion(version)).not.toThrow()
  })

  it.each(['1.16.0', '2.1.9', '3.0.0', 'garbage', undefined])('refuses %s, naming it and the supported range', (v) => {
    expect(() => checkKafkajsVersion(v)).toThrow(
      expect.objectContaining({
        code: 'MESSAGING_CLIENT_UNSUPPORTED',
        message: expect.stringMatching(
          new RegExp(`kafkajs ${v ?? '\\(unknown version\\)'} is installed.*\\^2\\.2\\.0`),
        ),
      }),
    )
  })

  it('is checked when the adapter loads', async () => {
    vi.resetModules()
    vi.doMock('node:module', async (importOriginal) => ({
      ...(await importOriginal<object>()),
      createRequire: () => () => ({ version: '1.16.0' }),
    }))
    try {
      await expect(import('../../src/adapters/kafka/index.js')).rejects.toMatchObject({
        code: 'MESSAGING_CLIENT_UNSUPPORTED',
        message: expect.stringContaining('kafkajs 1.16.0 is installed'),
      })
    } finally {
      vi.doUnmock('node:module')
      vi.resetModules()
    }
  })
})
