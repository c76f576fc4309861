// The public plugin API: what a third-party sink, notifier, export destination or policy imports.
export * from './usage-record';
export * from './usage-sink';
export * from './llm-admission';
export * from './task-agent';
export * from './alert-notifier';
export * from './export-destination';
