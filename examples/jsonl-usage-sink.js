// An example third-party usage sink: appends every usage record to a JSON Lines file, one line per
// LLM call in the SDK's serialized form (the field names and formats of the usage API).
//
//   npm run build    # builds the service and the plugin SDK (asa-backend/sdk)
//   USAGE_SINK_PLUGINS=./examples/jsonl-usage-sink.js JSONL_USAGE_FILE=usage.jsonl npm run start:prod
//
// or with the file in config/plugins.json:
//   { "plugins": { "./examples/jsonl-usage-sink.js": { "options": { "file": "usage.jsonl" } } } }
//
// A plugin module exports createUsageSink(options) returning { name, write(records), policy?, close? }
// (the UsageSink interface of asa-backend/sdk, see docs/plugins.md). The service calls write() with
// batches from this sink's own bounded queue, off the LLM caller's path; a failing write never
// affects other sinks.
'use strict';
const { appendFile } = require('node:fs/promises');
const { resolve } = require('node:path');
const { serializeUsageRecord } = require('asa-backend/sdk');

// The plugin API this module was written against: loaded by any 1.x service from 1.0 on.
exports.apiVersion = '1.0.0';

exports.createUsageSink = function createUsageSink(options) {
  const file = resolve(options.file || process.env.JSONL_USAGE_FILE || 'usage.jsonl');
  return {
    name: 'jsonl-file',
    // Appending the same record twice after a retry would duplicate it, so a failed batch is
    // dropped (and counted in usage_sink_dropped_records_total) rather than retried.
    policy: { onFailure: 'drop', maxBatchSize: 1000 },
    async write(records) {
      await appendFile(file, records.map((r) => JSON.stringify(serializeUsageRecord(r)) + '\n').join(''));
    },
  };
};
