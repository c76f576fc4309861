import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './service-process';

export { freePort };

/** Debian's prometheus binary (`.ci/run` installs the `prometheus` package). */
export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN || '/usr/bin/prometheus';


/** A Prometheus config scraping the service at `target` (host:port) every second. */
export function scrapeConfig(opts: { target: string; ruleFiles?: string[]; alertmanager?: string }): string {
  const lines = ['global:', '  scrape_interval: 1s', '  evaluation_interval: 1s'];
  if (opts.ruleFiles?.length) lines.push('rule_files:', ...opts.ruleFiles.map((f) => `  - ${f}`));
  if (opts.alertmanager) {
    lines.push('alerting:', '  alertmanagers:', '    - static_configs:', `        - targets: ['${opts.alertmanager}']`);
  }
  lines.push('scrape_configs:', '  - job_name: asa-backend', '    metrics_path: /metrics', '    static_configs:', `      - targets: ['${opts.target}']`, '');
  return lines.join('\n');
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusHandle {
  url: string;
  /** Instant query; throws on a PromQL error (with Prometheus' message). */
  query(expr: string, time?: number): Promise<PromSample[]>;
  /** The raw API answer of any GET endpoint under /api/v1. */
  api<T = unknown>(path: string, params?: Record<string, string>): Promise<T>;
  /** Stdout and stderr of the process so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Runs the real Prometheus with `config` (YAML text) in a scratch storage folder, on 127.0.0.1,
 * and waits until it is ready. `stop()` kills it and removes the folder.
 */
export async function startPrometheus(config: string, extraArgs: string[] = []): Promise<PrometheusHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'asa-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const api = async <T>(path: string, params: Record<string, string> = {}): Promise<T> => {
    const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`);
    return body.data;
  };

  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${output}`);
      const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`prometheus not ready after 30 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url,
    api,
    query: async (expr, time) => {
      const data = await api<{ resultType: string; result: PromSample[] }>('query', {
        query: expr,
        ...(time === undefined ? {} : { time: String(time) }),
      });
      return data.result;
    },
    log: () => output,
    stop,
  };
}
