// What the HTTP thread and a session worker share besides messages: one
// SharedArrayBuffer holding a stop flag, a count of the runs messages posted
// and a count of the results messages posted.
//
// A worker that has just answered a lone request watches the runs count, awake,
// for a while (session-worker.ts, linger), so the next request does not have to
// wake it; the HTTP thread may watch the results count for a lone request's
// answer the same way (model-worker.ts, #sendLone). A worker holding a batch for
// maxQueueDelayUs sleeps in Atomics.wait on the runs count rather than on a
// timer. Timers here fire on millisecond ticks (measured:
// setTimeout of 0.1 ms fires after 1.1 ms on Bun and Node, 2.2 ms on Deno), and
// a timer cannot end early when the batch fills up. Atomics.wait ends near the
// deadline, or as soon as the HTTP thread posts more runs.

import { recentLeast } from "./recent-least";

const STOP = 0;
const POSTED = 1;
const ANSWERED = 2;

export type Doorbell = Int32Array;

export const newDoorbell = (): Doorbell => new Int32Array(new SharedArrayBuffer(12));
/** The worker's view of the buffer the load message carried. */
export const doorbellOf = (buffer: SharedArrayBuffer): Doorbell => new Int32Array(buffer);

/** After each runs message, when the worker may be waiting for one. */
export function ring(bell: Doorbell): void {
  Atomics.add(bell, POSTED, 1);
  Atomics.notify(bell, POSTED);
}

/** "Run nothing more, release and exit"; wakes a worker that is holding a batch. */
export function requestStop(bell: Doorbell): void {
  Atomics.store(bell, STOP, 1);
  ring(bell);
}

export const stopRequested = (bell: Doorbell): boolean => Atomics.load(bell, STOP) !== 0;

/**
 * Waits awake, the thread staying on its core, until the count at `index` is past
 * `count` (counts wrap at 2^32), a stop is requested, or `deadline`
 * (performance.now() time) comes. True when the count moved past.
 */
function spinUntilPast(bell: Doorbell, index: number, count: number, deadline: number): boolean {
  while (!stopRequested(bell)) {
    if (((Atomics.load(bell, index) - count) | 0) > 0) return true;
    if (performance.now() >= deadline) return false;
  }
  return false;
}

/**
 * The HTTP thread's wait for the worker's next results message, awake, until
 * `deadline`. The message is on its way once the count moves: the caller's event
 * loop then delivers it without sleeping.
 */
export function spinForAnswer(bell: Doorbell, deadline: number): void {
  spinUntilPast(bell, ANSWERED, Atomics.load(bell, ANSWERED), deadline);
}

/** How many recent timed-out waits the waiter learns from. */
const SAMPLES = 16;

/**
 * The worker's side of the bell. A timed Atomics.wait returns late, by the
 * kernel's timer slack and the thread's wake-up (measured here: 80-100 µs on
 * Bun, Node and Deno alike, so a 250 µs wait took 330 µs); the waiter aims
 * early by the least lateness of its recent waits, so the delay is the most a
 * request waits. The least, not an average: a wake-up made late by a busy host
 * must not make every later wait end early.
 */
export class BellWaiter {
  #late = 0;
  /** Fills of Infinity never win once a wait has timed out; until then #late stays 0. */
  #recentLate = recentLeast(SAMPLES, Infinity);

  constructor(private readonly bell: Doorbell) {}

  stopped(): boolean {
    return stopRequested(this.bell);
  }

  /** After each results message: the HTTP thread may be watching for it (spinForAnswer). */
  answered(): void {
    Atomics.add(this.bell, ANSWERED, 1);
  }

  /** The worker's own exit: queued runs are skipped. */
  requestStop(): void {
    requestStop(this.bell);
  }

  /**
   * Blocks the thread until a runs message is posted beyond the `received` it
   * has handled (counts wrap at 2^32), a stop is requested, or `deadline`
   * (performance.now() time) comes. Only "posted" means a message is on its
   * way: the caller lets its event loop deliver it.
   */
  awaitPosted(received: number, deadline: number): "posted" | "stopped" | "deadline" {
    const aim = deadline - this.#late;
    for (;;) {
      if (this.stopped()) return "stopped";
      const posted = Atomics.load(this.bell, POSTED);
      // A message can arrive before the HTTP thread counts it; until then the count is behind.
      if (((posted - received) | 0) > 0) return "posted";
      const left = aim - performance.now();
      if (left <= 0) return "deadline";
      // Woken or timed out, the loop looks again: a timeout may also end a hair early.
      if (Atomics.wait(this.bell, POSTED, posted, left) === "timed-out") this.#learn(performance.now() - aim);
    }
  }

  /**
   * awaitPosted without sleeping: the thread stays on its core, so a runs message
   * posted before `deadline` finds it running. True when one was posted.
   */
  spinForPosted(received: number, deadline: number): boolean {
    return spinUntilPast(this.bell, POSTED, received, deadline);
  }

  #learn(lateMs: number): void {
    this.#recentLate.note(Math.max(0, lateMs));
    this.#late = this.#recentLate.least();
  }
}
