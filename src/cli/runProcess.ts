import { main } from './main';

/**
 * Binds `main` to the real process: argv, stdio, SIGINT/SIGTERM as an AbortSignal, and the
 * exit code. Output is flushed before exiting because `process.exit` would cut pipes short.
 */
export async function runProcess(): Promise<void> {
  const controller = new AbortController();
  let interrupted = 0;
  let clean = false;
  const onSignal = (): void => {
    interrupted++;
    if (interrupted > 1) process.exit(130); // second Ctrl-C: stop now
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A reader that closes the pipe early (`| head`) is normal; do not crash on EPIPE.
  // Other stdout errors are reported by the command's OutputStream; this listener only keeps
  // an unhandled 'error' event from crashing the process.
  process.stdout.on('error', () => undefined);
  const code = await main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
    stoppedBySignalCleanly: () => {
      clean = true;
    },
  });
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  process.exitCode = controller.signal.aborted && code === 0 && !clean ? 130 : code;
  // Nothing the command awaited is left, but a driver may leave a socket open: after a
  // refused login (no password given) node-postgres keeps it until the server's
  // authentication_timeout (60 s) closes it. Exit once stdout and stderr are flushed.
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit();
}

/** Resolves when what was written to the stream so far has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.write('', () => resolve());
  });
}
