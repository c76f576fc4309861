import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ExportDeliveryResult, ExportDestination, FinishedExport } from '../sdk';

/**
 * The built-in destination: the export's file in BILLING_EXPORT_DIR. The exporter already wrote it
 * there (temporary name, then rename); this destination checks the file on disk is the one the
 * export record describes (size and SHA-256) and records where it is, on the public destination
 * API like any plugin.
 */
@Injectable()
export class LocalFolderExportDestination implements ExportDestination {
  readonly name = 'local';

  async deliver(file: FinishedExport): Promise<ExportDeliveryResult> {
    const info = await stat(file.path);
    if (info.size !== file.bytes) throw new Error(`${file.path} has ${info.size} bytes, expected ${file.bytes}`);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file.path)) hash.update(chunk as Buffer);
    const sha256 = hash.digest('hex');
    if (sha256 !== file.sha256) throw new Error(`${file.path} does not match its recorded SHA-256`);
    return { location: file.path };
  }
}
