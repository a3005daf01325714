/** The one way tests ask whether something listens on a loopback port. */
import { connect } from 'node:net';
import { until } from './until.js';

/** 'open' when a TCP connection is accepted, 'refused' on ECONNREFUSED, 'error' otherwise. */
export function probePort(port: number): Promise<'open' | 'refused' | 'error'> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : 'error'));
  });
}

export async function connectionRefused(port: number): Promise<boolean> {
  return (await probePort(port)) === 'refused';
}

/** Waits until the port accepts connections (`up`) or no longer does. */
export async function waitForPort(port: number, up: boolean, timeoutMs = 5_000): Promise<void> {
  await until(`port ${port} ${up ? 'open' : 'closed'}`, async () => ((await probePort(port)) === 'open') === up, timeoutMs);
}
