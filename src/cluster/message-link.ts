/**
 * Request/reply and push over one message channel between the cluster primary and a worker.
 * Either side may call the other (`call` → a handler registered with `handle` → its result) or
 * push a one-way message. The channel is abstracted as a MessageEnd so the same link runs over
 * a worker's IPC channel in production and over a worker_threads MessageChannel in tests.
 */
import { thrownText } from '../core/errors.js';

/** One end of a channel that carries structured-clone messages (Maps and Sets included). */
export interface MessageEnd {
  /** Throws, or reports through `onError`, when the channel has closed. */
  send(message: Envelope, onError: (err: Error) => void): void;
  /** Returns a function that stops listening. */
  listen(listener: (message: unknown) => void): () => void;
}

/** Marks our messages apart from others on the same channel (node:cluster's, prom-client's). */
const TAG = 'edgeRouterLink';

type Envelope =
  | { readonly [TAG]: 'call'; readonly id: number; readonly method: string; readonly args: readonly unknown[] }
  | { readonly [TAG]: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly [TAG]: 'reply'; readonly id: number; readonly ok: false; readonly error: string }
  | { readonly [TAG]: 'push'; readonly topic: string; readonly payload: unknown };

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class LinkError extends Error {
  override readonly name = 'LinkError';
}

export class MessageLink {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly handlers = new Map<string, (args: readonly unknown[]) => unknown>();
  private readonly pushListeners = new Map<string, Set<(payload: unknown) => void>>();
  private readonly stopListening: () => void;
  private closed = false;

  constructor(
    private readonly end: MessageEnd,
    private readonly defaultTimeoutMs = 5_000,
  ) {
    this.stopListening = end.listen((message) => this.receive(message));
  }

  /** Answers the other side's `call(method, ...)`; a thrown error is sent back as the rejection. */
  handle<A extends unknown[]>(method: string, handler: (...args: A) => unknown): void {
    this.handlers.set(method, (args) => handler(...(args as A)));
  }

  call<T>(method: string, args: readonly unknown[] = [], timeoutMs = this.defaultTimeoutMs): Promise<T> {
    if (this.closed) return Promise.reject(new LinkError(`${method}: the link is closed`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const fail = (err: Error) => {
        const entry = this.pending.get(id);
        if (entry === undefined) return;
        clearTimeout(entry.timer);
        this.pending.delete(id);
        reject(new LinkError(`${method}: ${err.message}`));
      };
      const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      try {
        this.end.send({ [TAG]: 'call', id, method, args }, fail);
      } catch (err) {
        fail(err as Error);
      }
    });
  }

  /** One-way message; lost silently if the channel has closed (the receiver resyncs on its own). */
  push(topic: string, payload: unknown): void {
    if (this.closed) return;
    try {
      this.end.send({ [TAG]: 'push', topic, payload }, () => undefined);
    } catch {
      // closed channel: see above
    }
  }

  onPush(topic: string, listener: (payload: unknown) => void): () => void {
    let listeners = this.pushListeners.get(topic);
    if (listeners === undefined) this.pushListeners.set(topic, (listeners = new Set()));
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /** Stops listening; calls still waiting are rejected. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopListening();
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      this.pending.delete(id);
      entry.reject(new LinkError('the link closed before the answer came'));
    }
  }

  private receive(message: unknown): void {
    if (typeof message !== 'object' || message === null || !(TAG in message)) return;
    const envelope = message as Envelope;
    switch (envelope[TAG]) {
      case 'call':
        void this.answer(envelope.id, envelope.method, envelope.args);
        return;
      case 'reply': {
        const entry = this.pending.get(envelope.id);
        if (entry === undefined) return; // timed out meanwhile
        clearTimeout(entry.timer);
        this.pending.delete(envelope.id);
        if (envelope.ok) entry.resolve(envelope.value);
        else entry.reject(new LinkError(envelope.error));
        return;
      }
      case 'push':
        for (const listener of this.pushListeners.get(envelope.topic) ?? []) listener(envelope.payload);
        return;
    }
  }

  private async answer(id: number, method: string, args: readonly unknown[]): Promise<void> {
    const handler = this.handlers.get(method);
    let reply: Envelope;
    try {
      if (handler === undefined) throw new Error(`no handler for ${method}`);
      reply = { [TAG]: 'reply', id, ok: true, value: await handler(args) };
    } catch (err) {
      reply = { [TAG]: 'reply', id, ok: false, error: thrownText(err) };
    }
    if (this.closed) return;
    try {
      this.end.send(reply, () => undefined);
    } catch {
      // the caller is gone; its own timeout or close() settles its promise
    }
  }
}

/** The worker's end: its IPC channel to the primary (`process.send` / `'message'`). */
export function primaryEnd(proc: NodeJS.Process = process): MessageEnd {
  return {
    send(message, onError) {
      if (proc.send === undefined || !proc.connected) throw new Error('no channel to the cluster primary');
      proc.send(message, undefined, {}, (err) => {
        if (err) onError(err);
      });
    },
    listen(listener) {
      proc.on('message', listener);
      return () => proc.off('message', listener);
    },
  };
}

/** The primary's end of one worker's channel. */
export function workerEnd(worker: import('node:cluster').Worker): MessageEnd {
  return {
    send(message, onError) {
      if (!worker.isConnected()) throw new Error(`worker ${worker.id} has disconnected`);
      worker.send(message, undefined, (err) => {
        if (err) onError(err);
      });
    },
    listen(listener) {
      worker.on('message', listener);
      return () => worker.off('message', listener);
    },
  };
}
