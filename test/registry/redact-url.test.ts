import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/registry/redis-registry.js';

describe('redactUrl', () => {
  it.each([
    ['redis://:s3cret@redis.internal:6379/0', 'redis://:***@redis.internal:6379/0'],
    ['rediss://app:s3cret@redis.internal:6380', 'rediss://app:***@redis.internal:6380'],
    ['redis://redis.internal:6379/?password=s3cret&db=2', 'redis://redis.internal:6379/?password=***&db=2'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['not a url', '(unparseable Redis URL)'],
  ])('%s → %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
    expect(redactUrl(url)).not.toContain('s3cret');
  });
});
