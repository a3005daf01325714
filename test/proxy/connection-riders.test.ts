import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { answeredByRouter, board, closesAfter, closingByRouter, type ConnectionRider, type RouterAnswer } from '../../src/proxy/connection-riders.js';

class FakeSocket extends EventEmitter {
  destroyed = false;
}

const rider = (log: string[], name: string): ConnectionRider => ({ connectionClosed: () => void log.push(name) });

describe('connection riders', () => {
  it('adds one close listener per connection, however many requests ride on it', () => {
    const socket = new FakeSocket();
    const log: string[] = [];
    for (let i = 0; i < 100; i++) board(socket, rider(log, `r${i}`)).clear();
    expect(socket.listenerCount('close')).toBe(1);
  });

  it('ends every rider still on the connection when it closes, and none that left', () => {
    const socket = new FakeSocket();
    const log: string[] = [];
    const left = rider(log, 'left');
    const riders = board(socket, left);
    board(socket, rider(log, 'a'));
    board(socket, rider(log, 'b'));
    riders.delete(left);
    socket.emit('close');
    expect(log).toEqual(['a', 'b']);
  });

  it('copes with a rider leaving the list while the close is being handed out', () => {
    const socket = new FakeSocket();
    const log: string[] = [];
    let riders = new Set<ConnectionRider>();
    const selfRemoving = (name: string): ConnectionRider => {
      const r: ConnectionRider = {
        connectionClosed: () => {
          log.push(name);
          riders.delete(r);
        },
      };
      return r;
    };
    riders = board(socket, selfRemoving('a'));
    board(socket, selfRemoving('b'));
    socket.emit('close');
    expect(log).toEqual(['a', 'b']);
  });

  it('tells the riders whether the router closed the connection, or the client did', () => {
    const [cut, left] = [new FakeSocket(), new FakeSocket()];
    const told: string[] = [];
    const listening = (name: string): ConnectionRider => ({ connectionClosed: (byRouter) => void told.push(`${name}:${byRouter ? 'router' : 'client'}`) });
    board(cut, listening('cut'));
    board(left, listening('left'));
    closingByRouter(cut);
    cut.emit('close');
    left.emit('close');
    expect(told).toEqual(['cut:router', 'left:client']);
  });

  it('tells the riders what the router answered on the connection before closing it', () => {
    const socket = new FakeSocket();
    const told: Array<[boolean, RouterAnswer | undefined]> = [];
    board(socket, { connectionClosed: (byRouter, answered) => void told.push([byRouter, answered]) });
    const answer: RouterAnswer = { response: {}, status: 408, code: 'request_timeout' };
    answeredByRouter(socket, answer);
    socket.emit('close');
    expect(told).toEqual([[true, answer]]);
    // A connection the router only closed carries no answer.
    const cut = new FakeSocket();
    board(cut, { connectionClosed: (byRouter, answered) => void told.push([byRouter, answered]) });
    closingByRouter(cut);
    cut.emit('close');
    expect(told[1]).toEqual([true, undefined]);
  });

  it('takes an answer that closes the connection it holds for the router closing it, and no other', () => {
    const told: string[] = [];
    const watched = (name: string) => {
      const socket = new FakeSocket();
      board(socket, { connectionClosed: (byRouter) => void told.push(`${name}:${byRouter ? 'router' : 'client'}`) });
      return socket;
    };
    const last = watched('last');
    const keptAlive = watched('kept-alive');
    const queued = watched('queued');
    closesAfter({ _last: true, socket: last });
    closesAfter({ _last: false, socket: keptAlive });
    closesAfter({ _last: true, socket: null }); // waits behind another answer: not its end yet
    for (const socket of [last, keptAlive, queued]) socket.emit('close');
    expect(told).toEqual(['last:router', 'kept-alive:client', 'queued:client']);
  });

  it('takes a closing answer queued behind another for the router closing the connection once its turn comes', () => {
    const told: string[] = [];
    const socket = new FakeSocket();
    board(socket, { connectionClosed: (byRouter) => void told.push(byRouter ? 'router' : 'client') });
    const answer = new (class extends EventEmitter {
      readonly _last = true;
      socket: FakeSocket | null = null;
    })();
    closesAfter(answer); // queued: not its end yet
    answer.socket = socket; // its turn: Node assigns the connection, then says 'socket'
    answer.emit('socket');
    socket.emit('close');
    expect(told).toEqual(['router']);
  });

  it('keeps connections apart', () => {
    const [one, two] = [new FakeSocket(), new FakeSocket()];
    const log: string[] = [];
    board(one, rider(log, 'on-one'));
    board(two, rider(log, 'on-two'));
    one.emit('close');
    expect(log).toEqual(['on-one']);
  });
});
