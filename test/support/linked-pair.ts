/**
 * Two MessageLinks joined by a worker_threads MessageChannel: real structured-clone messages
 * (Maps and Sets included, as over the cluster's advanced-serialization IPC) without forking.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { MessageLink, type MessageEnd } from '../../src/cluster/message-link.js';

function portEnd(port: MessagePort): MessageEnd {
  return {
    send(message) {
      port.postMessage(message);
    },
    listen(listener) {
      port.on('message', listener);
      return () => port.off('message', listener);
    },
  };
}

export interface LinkedPair {
  readonly primary: MessageLink;
  readonly worker: MessageLink;
  close(): void;
}

export function linkedPair(timeoutMs?: number): LinkedPair {
  const { port1, port2 } = new MessageChannel();
  port1.unref();
  port2.unref();
  const primary = new MessageLink(portEnd(port1), timeoutMs);
  const worker = new MessageLink(portEnd(port2), timeoutMs);
  return {
    primary,
    worker,
    close() {
      primary.close();
      worker.close();
      port1.close();
    },
  };
}
