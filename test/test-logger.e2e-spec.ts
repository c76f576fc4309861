import { ConsoleLogger, Logger } from '@nestjs/common';
import { TestLogger } from './support/test-logger';

/** The logger of test apps prints provoked errors as one line each: the message and the error, no stack frames. */
describe('TestLogger', () => {
  const capture = (fn: () => void): string => {
    let out = '';
    const write = process.stderr.write.bind(process.stderr);
    const stdout = process.stdout.write.bind(process.stdout);
    process.stderr.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof process.stderr.write;
    process.stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof process.stdout.write;
    try {
      fn();
    } finally {
      process.stderr.write = write;
      process.stdout.write = stdout;
    }
    return out;
  };

  it('keeps the message and the error line, drops the frames of a stack in the message or passed as the stack', () => {
    const logger = new TestLogger();
    const err = new Error('scripted agent failure');
    expect(err.stack).toMatch(/\n\s+at /);
    const out = capture(() => {
      logger.error(`task 1: agent threw: ${err.stack}`, 'TaskRunner');
      logger.error('request failed', err.stack, 'AllExceptionsFilter');
      logger.warn(`retrying: ${err.stack}`, 'Sink');
    });
    expect(out).toContain('ERROR [TaskRunner] task 1: agent threw: Error: scripted agent failure');
    expect(out).toContain('ERROR [AllExceptionsFilter] request failed');
    expect(out).toContain('WARN [Sink] retrying: Error: scripted agent failure');
    expect(out).not.toMatch(/^\s+at /m);
    expect(out).not.toContain('\u001b[');
  });

  it('prints warnings and errors only, as the apps tests boot are told to', () => {
    const logger = new TestLogger();
    const out = capture(() => {
      logger.log('started', 'X');
      logger.debug('details', 'X');
      logger.warn('careful', 'X');
    });
    expect(out).not.toContain('started');
    expect(out).not.toContain('details');
    expect(out).toContain('careful');
  });

  it('is what Nest loggers write through once a test app overrides the logger', () => {
    Logger.overrideLogger(new TestLogger());
    try {
      const out = capture(() => new Logger('Ctx').error(`boom: ${new Error('x').stack}`));
      expect(out).toContain('ERROR [Ctx] boom: Error: x');
      expect(out).not.toMatch(/^\s+at /m);
    } finally {
      Logger.overrideLogger(new ConsoleLogger());
    }
  });
});
