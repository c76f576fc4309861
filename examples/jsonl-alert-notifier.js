// An example third-party alert notifier: appends every cost alert to a JSON Lines file.
//
//   ALERT_NOTIFIER_PLUGINS=./examples/jsonl-alert-notifier.js JSONL_ALERTS_FILE=alerts.jsonl npm start
//
// A plugin module exports createAlertNotifier() returning { name, send(alert), resendWhileFiring?, close? }
// (the AlertNotifier interface in src/plugins/sdk). The service calls send() off the quota evaluation's
// path, once per alert state (firing, then resolved), bounded by ALERT_DELIVERY_TIMEOUT_MS; a send that
// throws is retried with backoff, and every attempt is stored (GET /api/v1/alerts). Keep secrets out of
// thrown messages: they are stored and shown.
'use strict';
const { appendFile } = require('node:fs/promises');
const { resolve } = require('node:path');

exports.createAlertNotifier = function createAlertNotifier() {
  const file = resolve(process.env.JSONL_ALERTS_FILE || 'alerts.jsonl');
  return {
    // Names go in quota rules' `notify` lists, logs, metrics and stored deliveries.
    name: 'jsonl-file',
    async send(alert) {
      await appendFile(file, JSON.stringify(alert) + '\n');
    },
  };
};
