/**
 * One 'aborted' and one 'close' listener per HTTP/2 stream, however many of the router's modules
 * have a job for those events. A served stream has four: the reset-flood guard counts a client's
 * reset when the stream aborts (reset-flood-guard.ts), and one fewer of the address's quota slots
 * held by its connection when it closes; the stream pair destroys an aborted stream so that its
 * 'close' comes at all (http2-stream-pair.ts), and the exchange learns from that 'close' that its
 * client left. As four listeners of their own (`once` wrappers, listener arrays, their copies on
 * emit, the wrappers' removal) they cost about 1,000 instructions each a request (callgrind, issue
 * #10); here each stream carries one hook object, and each event one function shared by every
 * stream.
 *
 * The jobs run in the order they were asked for, as listeners would have; an aborted stream is
 * destroyed after all of them, as the pair's listener, registered after the guard's, was.
 * Each event is emitted once per stream; a job asked for after its event has run waits for an
 * emit that never comes, as a `once` listener added then would.
 */
import type { ServerHttp2Stream } from 'node:http2';

/** A job for a stream's 'aborted' event: the client reset it, or its connection died, before its answer ended. */
export type AbortJob = (stream: ServerHttp2Stream) => void;
/** A job for a stream's 'close' event. */
export type CloseJob = () => void;

class StreamHooks {
  /** 'aborted' has a listener (registered with the first job or the destroy, and only then: most streams never abort, some never need it). */
  listensForAbort = false;
  abortJobs: AbortJob[] | null = null;
  /** After the abort jobs: whoever waits for 'close' needs the stream destroyed to get it. */
  destroyOnAbort = false;
  listensForClose = false;
  closeJobs: CloseJob[] | null = null;
}

const HOOKS = Symbol('edge.streamHooks');
type HookedStream = ServerHttp2Stream & { [HOOKS]?: StreamHooks };

function hooksOf(stream: HookedStream): StreamHooks {
  let hooks = stream[HOOKS];
  if (hooks === undefined) stream[HOOKS] = hooks = new StreamHooks();
  return hooks;
}

/** Runs `job` when `stream` aborts, after the jobs asked for before it and before any destroy (destroyWhenAborted). */
export function whenAborted(stream: ServerHttp2Stream, job: AbortJob): void {
  const hooks = listeningForAbort(stream);
  if (hooks.abortJobs === null) hooks.abortJobs = [job];
  else hooks.abortJobs.push(job);
}

/** Destroys `stream` when it aborts, once every abort job has run: its 'close' then comes now. */
export function destroyWhenAborted(stream: ServerHttp2Stream): void {
  listeningForAbort(stream).destroyOnAbort = true;
}

/** Runs `job` when `stream` closes, after the jobs asked for before it. */
export function whenClosed(stream: ServerHttp2Stream, job: CloseJob): void {
  const hooks = hooksOf(stream);
  if (!hooks.listensForClose) {
    hooks.listensForClose = true;
    stream.on('close', runCloseJobs);
  }
  if (hooks.closeJobs === null) hooks.closeJobs = [job];
  else hooks.closeJobs.push(job);
}

function listeningForAbort(stream: ServerHttp2Stream): StreamHooks {
  const hooks = hooksOf(stream);
  if (!hooks.listensForAbort) {
    hooks.listensForAbort = true;
    stream.on('aborted', runAbortJobs);
  }
  return hooks;
}

function runAbortJobs(this: HookedStream): void {
  const hooks = this[HOOKS]!;
  const jobs = hooks.abortJobs;
  const destroy = hooks.destroyOnAbort;
  // Taken before running: each job runs once, as a `once` listener would, whatever a job does to the stream.
  hooks.abortJobs = null;
  hooks.destroyOnAbort = false;
  if (jobs !== null) for (const job of jobs) job(this);
  if (destroy) this.destroy();
}

function runCloseJobs(this: HookedStream): void {
  const hooks = this[HOOKS]!;
  const jobs = hooks.closeJobs;
  hooks.closeJobs = null;
  if (jobs !== null) for (const job of jobs) job();
}
