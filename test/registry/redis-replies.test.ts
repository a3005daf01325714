import { ReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { isWrongType, refusalOfTheMoment } from '../../src/registry/redis-replies.js';

const reply = (text: string): Error => new ReplyError(text) as Error;

describe('Redis replies', () => {
  it.each([
    ['LOADING Redis is loading the dataset in memory', 'LOADING'],
    ['BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.', 'BUSY'],
    ["MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", 'MASTERDOWN'],
    ['TRYAGAIN Multiple keys request during rehashing of slot', 'TRYAGAIN'],
    ["READONLY You can't write against a read only replica.", 'READONLY'],
    ['NOREPLICAS Not enough good replicas to write.', 'NOREPLICAS'],
  ])('takes %j for a refusal of the moment, by its first word', (text, word) => {
    const refusal = refusalOfTheMoment(reply(text));
    expect(refusal?.word).toBe(word);
    expect(refusal?.meaning).toMatch(/^Redis /);
    expect(isWrongType(reply(text))).toBe(false);
  });

  it('takes WRONGTYPE for bad data in a key, not a refusal of the moment', () => {
    const wrongType = reply('WRONGTYPE Operation against a key holding the wrong kind of value');
    expect(isWrongType(wrongType)).toBe(true);
    expect(refusalOfTheMoment(wrongType)).toBeUndefined();
  });

  it.each([
    ['another reply', reply("NOPERM User default has no permissions to run the 'hgetall' command")],
    ['a reply naming a refusal past its first word', reply('ERR LOADING is not a command')],
    ['a word that only begins like one', reply('LOADINGS nothing')],
    ['a connection failure saying the same words', new Error('LOADING Redis is loading the dataset in memory')],
    ['no error at all', 'LOADING'],
  ])('takes %s for none', (_what, err) => {
    expect(refusalOfTheMoment(err)).toBeUndefined();
    expect(isWrongType(err)).toBe(false);
  });
});
