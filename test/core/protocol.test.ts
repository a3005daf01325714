import { describe, expect, it } from 'vitest';
import { isReservedPath, PREWARM_PATH } from '../../src/core/protocol.js';

describe('isReservedPath', () => {
  it.each([
    PREWARM_PATH,
    '/_edge/anything?x=1',
    '/_edge',
    '/_edge/',
    '/_EDGE/prewarm',
    // What a server behind the router may undo before it matches a path:
    '/%5Fedge/prewarm',
    '/%5fEdge/prewarm',
    '/%255Fedge/prewarm', // decoded twice
    '/_edge%2Fprewarm',
    '/x/../_edge/prewarm',
    '/./_edge/prewarm',
    '//_edge/prewarm',
    '/\\_edge/prewarm',
    '/_edge\\prewarm',
    '/a/b/../../_edge/prewarm?q=%2e',
    '/../_edge/prewarm',
    // Path parameters, which servlet containers (Tomcat, Jetty) take off each segment before matching:
    '/_edge;x/prewarm',
    '/..;/_edge/prewarm',
    '/x/..;a=b/_edge/prewarm',
    '/;/_edge/prewarm',
    '/%5Fedge%3Bx/prewarm',
  ])('%s is the platform\'s', (path) => {
    expect(isReservedPath(path)).toBe(true);
  });

  it.each(['/', '/hello', '/_edgeways', '/_edge-status', '/api/_edge/prewarm', '/x/_edge/../y', '/%5Fedgeways', '/hello?next=/_edge/prewarm', '/_', '/a%zz/_edge', '*', '/_edge-x;/prewarm', '/x;/_edge/../y'])(
    '%s is a function path',
    (path) => {
      expect(isReservedPath(path)).toBe(false);
    },
  );
});
