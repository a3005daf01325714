import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { handleHttp2AfterRead } from '../../src/ingress/http2-after-read.js';

interface FakeRequest {
  readonly httpVersionMajor: number;
  readonly name: string;
  readonly stream: { closed: boolean; destroyed: boolean; session: object };
}

const sessionA = {};
const sessionB = {};
const h2 = (name: string, session: object): FakeRequest => ({ httpVersionMajor: 2, name, stream: { closed: false, destroyed: false, session } });

function recorder(perTurn?: number) {
  const handled: string[] = [];
  const gone: string[] = [];
  const handle = handleHttp2AfterRead<FakeRequest, null>(
    (req) => void handled.push(req.name),
    (req) => void gone.push(req.name),
    perTurn,
  );
  return { handle, handled, gone };
}

describe('handleHttp2AfterRead', () => {
  it('handles HTTP/1 requests at once', () => {
    const { handle, handled } = recorder();
    handle({ httpVersionMajor: 1, name: 'h1', stream: undefined as never }, null);
    expect(handled).toEqual(['h1']);
  });

  it('handles HTTP/2 requests on the next turn, in arrival order', async () => {
    const { handle, handled } = recorder();
    handle(h2('a1', sessionA), null);
    handle(h2('b1', sessionB), null);
    handle(h2('a2', sessionA), null);
    expect(handled).toEqual([]);
    await nextTurn();
    expect(handled).toEqual(['a1', 'b1', 'a2']);
  });

  it('only logs a stream its client reset before it was handled (rapid reset)', async () => {
    const { handle, handled, gone } = recorder();
    const reset = h2('reset', sessionA);
    handle(reset, null);
    handle(h2('kept', sessionA), null);
    reset.stream.closed = true; // RST_STREAM in the same read as its HEADERS
    await nextTurn();
    expect(handled).toEqual(['kept']);
    expect(gone).toEqual(['reset']);
  });

  it('handles at most n new requests per connection per turn, so one connection cannot hold the loop', async () => {
    const { handle, handled } = recorder(3);
    for (let i = 1; i <= 7; i++) handle(h2(`a${i}`, sessionA), null);
    handle(h2('b1', sessionB), null);
    await nextTurn();
    expect(handled).toEqual(['a1', 'a2', 'a3', 'b1']); // the other connection is not made to wait
    handle(h2('a8', sessionA), null); // arrives meanwhile: behind the ones already waiting
    await nextTurn();
    expect(handled.slice(4)).toEqual(['a4', 'a5', 'a6']);
    await nextTurn();
    expect(handled.slice(7)).toEqual(['a7', 'a8']);
  });

  it('drops a waiting stream that is reset before its turn comes', async () => {
    const { handle, handled, gone } = recorder(1);
    const first = h2('first', sessionA);
    const second = h2('second', sessionA);
    handle(first, null);
    handle(second, null);
    await nextTurn();
    expect(handled).toEqual(['first']);
    second.stream.destroyed = true;
    await nextTurn();
    expect(handled).toEqual(['first']);
    expect(gone).toEqual(['second']);
  });
});
