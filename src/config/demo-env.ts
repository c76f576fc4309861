/**
 * Environment of the offline demo (`npm run demo`), which starts the service in its own process:
 * the demo plays the deployer, so it sets the variables the service reads here, in src/config,
 * the one place that touches process.env.
 */

/** Variables that could make the demo reach the network or a real account: removed for the demo. */
const OUTBOUND = /^(OPENAI_|OTEL_|[A-Z_]*_PLUGINS$|PLUGINS_FILE$|.*(WEBHOOK|SMTP|SLACK|ALERTMANAGER|PAGERDUTY).*)/i;

/** Sets the demo's environment (after clearing outbound settings) and returns a function that restores the previous one. */
export function applyDemoEnv(values: Record<string, string>): () => void {
  const saved = { ...process.env };
  for (const name of Object.keys(process.env)) if (OUTBOUND.test(name)) delete process.env[name];
  Object.assign(process.env, values);
  return () => {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  };
}

/** Port asked for with PORT, or 0 (any free port). */
export function demoPort(): number {
  const port = Number(process.env.PORT);
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : 0;
}
