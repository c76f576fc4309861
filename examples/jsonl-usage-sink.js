// An example third-party usage sink: appends every usage record to a JSON Lines file.
//
//   USAGE_SINK_PLUGINS=./examples/jsonl-usage-sink.js JSONL_USAGE_FILE=usage.jsonl npm start
//
// A plugin module exports createUsageSink() returning { name, write(records), policy?, close? }
// (the UsageSink interface in src/plugins/sdk). The service calls write() with batches from this
// sink's own bounded queue, off the LLM caller's path; a failing write never affects other sinks.
'use strict';
const { appendFile } = require('node:fs/promises');
const { resolve } = require('node:path');

exports.createUsageSink = function createUsageSink() {
  const file = resolve(process.env.JSONL_USAGE_FILE || 'usage.jsonl');
  return {
    name: 'jsonl-file',
    // Appending the same record twice after a retry would duplicate it, so a failed batch is
    // dropped (and counted in usage_sink_dropped_records_total) rather than retried.
    policy: { onFailure: 'drop', maxBatchSize: 1000 },
    async write(records) {
      await appendFile(file, records.map((r) => JSON.stringify(r) + '\n').join(''));
    },
  };
};
