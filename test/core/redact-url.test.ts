import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/core/redact-url.js';

describe('redactUrl', () => {
  it.each([
    ['redis://:s3cret@redis.internal:6379/0', 'redis://:***@redis.internal:6379/0'],
    ['rediss://app:s3cret@redis.internal:6380', 'rediss://app:***@redis.internal:6380'],
    ['redis://redis.internal:6379/?password=s3cret&db=2', 'redis://redis.internal:6379/?password=***&db=2'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['not a url', 'not a url'],
    // Too malformed to parse, still shown as typed, without the password.
    ['redis://:s3cret@127.0.0.1:99999', 'redis://:***@127.0.0.1:99999'],
    ['redis://:s3cret%zz@127.0.0.1:6379', 'redis://:***@127.0.0.1:6379'],
    ['redis://:s3c@r/et@127.0.0.1:6379', 'redis://:***@127.0.0.1:6379'],
    ['http://:s3cret@127.0.0.1:7001', 'http://:***@127.0.0.1:7001'],
    // ioredis decodes query keys: an encoded `password` is read as one (seen in review).
    ['redis://redis:6379/0?pass%77ord=s3cret', 'redis://redis:6379/0?pass%77ord=***'],
    ['redis://redis:6379/0?db=1&%70assword=s3cret#x', 'redis://redis:6379/0?db=1&%70assword=***#x'],
    ['redis://redis:6379/0?sentinelPassword=s3cret&db=1', 'redis://redis:6379/0?sentinelPassword=***&db=1'],
    ['redis://redis:6379/0?PASSWORD=s3cret', 'redis://redis:6379/0?PASSWORD=***'],
    ['redis://redis:6379/0?pass%zzword=s3cret', 'redis://redis:6379/0?pass%zzword=***'],
  ])('%s → %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
    expect(redactUrl(url)).not.toContain('s3c');
  });
});
