/** Thrown by OutputStream.write once the reader went away (EPIPE: `| head`). */
export class OutputClosedError extends Error {
  constructor() {
    super('output closed by the reader');
    this.name = 'OutputClosedError';
  }
}

/**
 * Writes text to a stream with backpressure: `write` resolves when the stream can take more,
 * so memory stays bounded by one batch whatever the table size. A closed pipe (EPIPE) turns
 * into OutputClosedError so the producer stops reading the table, and the CLI exits quietly.
 */
export class OutputStream {
  private closed = false;
  private failure: Error | undefined;
  private readonly onError = (e: Error & { code?: string }): void => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') this.closed = true;
    else this.failure = e;
  };

  constructor(private readonly stream: NodeJS.WritableStream) {
    stream.on('error', this.onError);
  }

  async write(text: string): Promise<void> {
    this.check();
    if (text === '') return;
    const ok = this.stream.write(text);
    if (!ok) await this.drained();
    // Pipes are written synchronously on Linux and EPIPE arrives as a later 'error' event:
    // yielding once per batch lets it land before the next batch is produced.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.check();
  }

  /** Waits until everything written so far is flushed (or the reader is gone). */
  async flush(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      // An empty write's callback runs after the queued writes before it.
      this.stream.write('', () => resolve());
    });
    if (this.failure) throw this.failure;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private check(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new OutputClosedError();
  }

  private drained(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.stream.removeListener('drain', done);
        this.stream.removeListener('close', done);
        this.stream.removeListener('error', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('close', done);
      this.stream.on('error', done);
    });
  }
}
