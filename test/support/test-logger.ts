import { ConsoleLogger } from '@nestjs/common';

/** `TEST_LOG_STACKS=1` brings the stack traces back, to debug a failing test. */
const SHOW_STACKS = process.env.TEST_LOG_STACKS === '1';

/** Drops the `    at ...` frames of a stack written into a message, keeping its first line (`Error: ...`). */
export function withoutStackFrames(message: unknown): unknown {
  if (typeof message !== 'string' || SHOW_STACKS) return message;
  return message
    .split('\n')
    .filter((line) => !/^\s+at\s/.test(line))
    .join('\n');
}

/**
 * The logger of the apps tests boot: warnings and errors only, each on its own line without stack
 * traces, so the errors tests provoke on purpose (a failing agent, a refused write, a 500) read as
 * one line each instead of pages of frames. No colour codes: test output is often a file.
 */
export class TestLogger extends ConsoleLogger {
  constructor() {
    super({ logLevels: ['error', 'warn'], colors: false });
  }

  error(message: unknown, ...optionalParams: unknown[]): void {
    super.error(withoutStackFrames(message), ...optionalParams);
  }

  warn(message: unknown, ...optionalParams: unknown[]): void {
    super.warn(withoutStackFrames(message), ...optionalParams);
  }

  protected printStackTrace(stack: string): void {
    if (SHOW_STACKS) super.printStackTrace(stack);
  }
}
