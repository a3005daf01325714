import type { ForwardingContext } from '../../src/proxy/headers.js';

export const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';

/** A request's forwarding facts as admission hands them to upstreamRequestHeaders: an untrusted HTTPS client. */
export const forwardingContext = (over: Partial<ForwardingContext> = {}): ForwardingContext => ({
  peerIp: '198.51.100.7',
  clientIp: '198.51.100.7',
  peerTrusted: false,
  trustedChain: 'x-forwarded-for',
  proto: 'https',
  host: 'fn-org.example.com',
  requestId: 'req-1',
  trace: { traceparent: TRACE, fromClient: false },
  fn: 'fn',
  org: 'org',
  ...over,
});
