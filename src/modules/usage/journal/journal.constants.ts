/**
 * The sink whose writes settle journal entries: once the database holds a record, its journal
 * entries may go. Other sinks (metrics, OTLP) never hold records for a replay to read.
 */
export const CONFIRMING_SINK = 'database';
