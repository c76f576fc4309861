// An example third-party alert notifier: appends every cost alert to a JSON Lines file.
//
//   ALERT_NOTIFIER_PLUGINS=./examples/jsonl-alert-notifier.js JSONL_ALERTS_FILE=alerts.jsonl npm start
//
// or with the file in config/plugins.json:
//   { "plugins": { "./examples/jsonl-alert-notifier.js": { "options": { "file": "alerts.jsonl" } } } }
//
// A plugin module exports createAlertNotifier(options) returning { name, send(alert), resendWhileFiring?,
// close? } (the AlertNotifier interface of asa-backend/sdk, see docs/plugins.md). The service calls
// send() off the quota evaluation's path, once per alert state (firing, then resolved), bounded by
// ALERT_DELIVERY_TIMEOUT_MS; a send that throws is retried with backoff, and every attempt is stored
// (GET /api/v1/alerts). Keep secrets out of thrown messages: they are stored and shown.
'use strict';
const { appendFile } = require('node:fs/promises');
const { resolve } = require('node:path');

exports.apiVersion = '1.0.0';

exports.createAlertNotifier = function createAlertNotifier(options) {
  const file = resolve(options.file || process.env.JSONL_ALERTS_FILE || 'alerts.jsonl');
  return {
    // Names go in quota rules' `notify` lists, logs, metrics and stored deliveries.
    name: options.name || 'jsonl-file',
    async send(alert) {
      await appendFile(file, JSON.stringify(alert) + '\n');
    },
  };
};
