/**
 * Something the deployer must fix stops the start (a bad keys, gateway, pricing or plugins file,
 * a missing sandbox): the message names the file or variable and the problem on one line, and the
 * service prints only that (main.ts), never a stack trace that would bury it.
 */
export class StartConfigError extends Error {
  constructor(message?: string) {
    super(message);
    this.name = new.target.name;
  }
}
