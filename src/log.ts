// Structured JSON lines on stdout: journald keeps them, jq reads them.
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type Level = keyof typeof LEVELS;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  /** Whether a line at `level` would be written: lets a hot path skip building its fields. */
  enabled(level: Level): boolean;
}

/**
 * Every request makes a child or two, and most never write a line: a child only
 * remembers its parent and its fields, and the fields are merged when a line is
 * written.
 */
class JsonLogger implements Logger {
  constructor(
    private readonly level: Level,
    private readonly fields: Record<string, unknown>,
    private readonly write: (line: string) => void,
    private readonly parent?: JsonLogger,
  ) {}

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.emit("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.emit("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.emit("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.emit("error", msg, fields);
  }
  child(fields: Record<string, unknown>): Logger {
    return new JsonLogger(this.level, fields, this.write, this);
  }
  enabled(level: Level): boolean {
    return LEVELS[level] >= LEVELS[this.level];
  }

  private bound(): Record<string, unknown> {
    return this.parent ? { ...this.parent.bound(), ...this.fields } : this.fields;
  }

  private emit(level: Level, msg: string, fields?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    this.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...this.bound(), ...fields }));
  }
}

/**
 * Lines to stdout for as long as something reads them. When the reader goes
 * (`modeld serve | head`, a log shipper that restarts), a write fails with EPIPE:
 * thrown by Bun's write, an 'error' event on Node's and Deno's stream, and unheard
 * either ended the process with every model it served at its next log line. The
 * pipe never comes back, so later lines are dropped, after one note on stderr.
 */
function stdoutLines(): (line: string) => void {
  let lost = false;
  const lose = (err: unknown) => {
    if (lost) return;
    lost = true;
    try {
      process.stderr.write(`modeld: stdout is gone (${(err as NodeJS.ErrnoException)?.code ?? err}); log lines are dropped from now on, and serving goes on\n`);
    } catch {}
  };
  process.stdout.on("error", lose);
  return (line) => {
    if (lost) return;
    try {
      process.stdout.write(line + "\n");
    } catch (err) {
      lose(err);
    }
  };
}

export function createLogger(level: Level, base: Record<string, unknown> = {}, write: (line: string) => void = stdoutLines()): Logger {
  return new JsonLogger(level, base, write);
}

export const silentLogger = (): Logger => createLogger("error", {}, () => {});

export interface RepeatedFailure {
  failed(err: unknown): void;
  succeeded(): void;
}

/**
 * For work that is tried again and again: a failure that lasts (a failed disk
 * under the database) is logged once, again when its error changes, and its end
 * once, not at every try. `retried` says when the next try comes.
 */
export function repeatedFailure(log: Logger, what: string, retried = "at every tick"): RepeatedFailure {
  let last: string | undefined;
  return {
    failed(err) {
      const error = err instanceof Error ? err.message : String(err);
      if (error !== last) log.error(`${what} failed; retried ${retried}, logged again when the error changes`, { error });
      last = error;
    },
    succeeded() {
      if (last !== undefined) log.info(`${what} works again`);
      last = undefined;
    },
  };
}
