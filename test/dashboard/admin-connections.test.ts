import { describe, expect, it } from 'vitest';
import { AdminConnections } from '../../src/dashboard/admin-connections.js';

/** Connections named by strings; `closedByIt` lists those it closed to make room. */
function setup(cap: number, perAddress: number) {
  const closedByIt: string[] = [];
  const connections = new AdminConnections<string>(cap, perAddress, (c) => closedByIt.push(c));
  return { connections, closedByIt };
}

describe('AdminConnections', () => {
  it('lets an address hold its share and no more; a closed connection gives its place back', () => {
    const { connections } = setup(10, 2);
    expect([connections.admit('a1', 'A', 0), connections.admit('a2', 'A', 0), connections.admit('a3', 'A', 0)]).toEqual([true, true, false]);
    expect(connections.admit('b1', 'B', 0)).toBe(true);
    connections.closed('a1');
    expect(connections.admit('a3', 'A', 1)).toBe(true);
    expect(connections.size).toBe(3);
  });

  it('at the cap, closes the connection quiet longest with no request under way to let a newcomer in', () => {
    const { connections, closedByIt } = setup(3, 3);
    connections.admit('silent-old', 'A', 0);
    connections.admit('busy', 'B', 1);
    connections.admit('silent-new', 'C', 2);
    connections.requestStarted('busy');
    expect(connections.admit('probe', 'D', 3)).toBe(true);
    expect(closedByIt).toEqual(['silent-old']);
    // The busy one's request ends at 10: quieter since then than silent-new (2), which goes next.
    connections.requestEnded('busy', 10);
    expect(connections.admit('probe-2', 'E', 11)).toBe(true);
    expect(closedByIt).toEqual(['silent-old', 'silent-new']);
    expect(connections.size).toBe(3);
  });

  it('turns the newcomer away when every place serves a request, counting pipelined requests until the last ends', () => {
    const { connections, closedByIt } = setup(2, 2);
    connections.admit('stream-1', 'A', 0);
    connections.admit('stream-2', 'B', 0);
    connections.requestStarted('stream-1');
    connections.requestStarted('stream-1');
    connections.requestStarted('stream-2');
    expect(connections.admit('late', 'C', 5)).toBe(false);
    connections.requestEnded('stream-1', 6);
    expect(connections.admit('late', 'C', 7)).toBe(false); // one of its two requests is still under way
    connections.requestEnded('stream-1', 8);
    expect(connections.admit('late', 'C', 9)).toBe(true);
    expect(closedByIt).toEqual(['stream-1']);
  });

  it('with no cap, bounds nothing', () => {
    const { connections } = setup(0, 1);
    expect([connections.admit('a1', 'A', 0), connections.admit('a2', 'A', 0)]).toEqual([true, true]);
  });
});
