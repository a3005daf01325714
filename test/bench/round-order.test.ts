import { describe, expect, it } from 'vitest';
import { roundOrder } from '../../bench/round-order.js';

const FOUR = ['router', 'nginx', 'node-bare', 'caddy'] as const;

describe("the benchmark's order of proxies in a round", () => {
  it('runs the router and the bare proxy back to back in every round, each proxy once', () => {
    for (let round = 1; round <= 8; round++) {
      const order = roundOrder(FOUR, round);
      expect([...order].sort()).toEqual([...FOUR].sort());
      expect(Math.abs(order.indexOf('router') - order.indexOf('node-bare'))).toBe(1);
    }
  });

  it('alternates which of the two goes first, and moves the pair and the rest around', () => {
    const rounds = [1, 2, 3, 4].map((round) => roundOrder(FOUR, round));
    expect(rounds.map((order) => order.indexOf('router') < order.indexOf('node-bare'))).toEqual([true, false, true, false]);
    // nginx and caddy each go first, and last, in some round.
    for (const name of ['nginx', 'caddy']) {
      expect(rounds.some((order) => order[0] === name)).toBe(true);
      expect(rounds.some((order) => order.at(-1) === name)).toBe(true);
    }
  });

  it('rotates every proxy when one of the pair is missing', () => {
    expect(roundOrder(['router', 'nginx', 'caddy'], 1)).toEqual(['router', 'nginx', 'caddy']);
    expect(roundOrder(['router', 'nginx', 'caddy'], 2)).toEqual(['nginx', 'caddy', 'router']);
  });

  it('works with the pair alone', () => {
    expect(roundOrder(['router', 'node-bare'], 1)).toEqual(['router', 'node-bare']);
    expect(roundOrder(['router', 'node-bare'], 2)).toEqual(['node-bare', 'router']);
  });
});
