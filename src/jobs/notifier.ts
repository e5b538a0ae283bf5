// Lets a long-poll wake the moment its job finishes instead of re-reading SQLite.
export interface JobNotifier {
  notify(jobId: string): void;
  /** Resolves when notify(jobId) is called or after ms, whichever is first. */
  waitFor(jobId: string, ms: number): Promise<void>;
}

export function createJobNotifier(): JobNotifier {
  const waiters = new Map<string, Set<() => void>>();
  return {
    notify(jobId) {
      const set = waiters.get(jobId);
      waiters.delete(jobId);
      set?.forEach((w) => w());
    },
    waitFor(jobId, ms) {
      return new Promise((resolve) => {
        let set = waiters.get(jobId);
        if (!set) waiters.set(jobId, (set = new Set()));
        const done = () => {
          clearTimeout(timer);
          set!.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        set.add(done);
      });
    },
  };
}
