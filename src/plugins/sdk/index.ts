// The public plugin API: what a third-party sink, notifier, export destination, agent or policy
// imports (`asa-backend/sdk`, built by tsconfig.sdk.json). Changes follow SDK_API_VERSION.
export * from './version';
export * from './usage-record';
export * from './serialize-usage-record';
export * from './usage-sink';
export * from './llm-admission';
export * from './task-agent';
export * from './alert-notifier';
export * from './export-destination';
