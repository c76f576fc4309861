import { Sandbox, SandboxLaunch, SandboxRequest } from './sandbox';

/**
 * TASK_SANDBOX=none: commands run as the service's user with the service's view of the machine;
 * only their environment is reduced to the allowlist. For trusted repositories only.
 */
export class NoSandbox implements Sandbox {
  readonly kind = 'none';
  readonly network = true;
  readonly uid = null;

  launch(argv: readonly string[], req: SandboxRequest): SandboxLaunch {
    return { file: argv[0], args: argv.slice(1), cwd: req.cwd, env: req.env, supervised: false };
  }

  async handOver(): Promise<void> {}
}
