// An example third-party export destination: copies every finished billing export into a second
// folder (a mounted share, a folder a backup job picks up), checking the copy against the export's
// SHA-256.
//
//   BILLING_EXPORT_DESTINATION_PLUGINS=./examples/folder-export-destination.js EXPORT_COPY_DIR=/mnt/billing npm start
//
// or with the folder in config/plugins.json:
//   { "plugins": { "./examples/folder-export-destination.js": { "options": { "folder": "/mnt/billing" } } } }
//
// A plugin module exports createExportDestination(options) returning { name, deliver(file) } (the
// ExportDestination interface of asa-backend/sdk, see docs/plugins.md). deliver() is called once
// per new export version, bounded by BILLING_EXPORT_DELIVERY_TIMEOUT_MS; what it returns is stored
// with the export, and a throw is stored as `failed` without affecting the export or other destinations.
'use strict';
const { createHash } = require('node:crypto');
const { copyFile, mkdir, readFile, rename } = require('node:fs/promises');
const { join, resolve } = require('node:path');

exports.apiVersion = '1.0.0';

exports.createExportDestination = function createExportDestination(options) {
  const folder = options.folder || process.env.EXPORT_COPY_DIR;
  if (!folder) throw new Error('set options.folder in config/plugins.json or EXPORT_COPY_DIR');
  const target = resolve(folder);
  return {
    name: 'folder-copy',
    async deliver(file) {
      await mkdir(target, { recursive: true });
      const final = join(target, file.fileName);
      // Copied under a temporary name and renamed, so a reader never sees half a file.
      const partial = `${final}.partial`;
      await copyFile(file.path, partial);
      const sha256 = createHash('sha256').update(await readFile(partial)).digest('hex');
      if (sha256 !== file.sha256) throw new Error(`the copy of ${file.fileName} does not match its SHA-256`);
      await rename(partial, final);
      return { location: final, detail: { bytes: file.bytes } };
    },
  };
};
