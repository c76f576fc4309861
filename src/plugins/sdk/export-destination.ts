import type { PluginModuleBase, PluginOptions } from './version';

/**
 * A finished billing export as every destination receives it. The file is final (written under a
 * temporary name and renamed) and never changes afterwards; a later version is a new file.
 */
export interface FinishedExport {
  /** Id of the export record (`GET /api/v1/billing/exports`). */
  readonly id: string;
  /** `daily`, `monthly` (a whole local day or month in BILLING_TIMEZONE) or `custom`. */
  readonly kind: 'daily' | 'monthly' | 'custom';
  /** The period, ISO 8601 with the offset of BILLING_TIMEZONE; end exclusive. */
  readonly periodStart: string;
  readonly periodEnd: string;
  readonly groupBy: readonly ('user' | 'model' | 'task' | 'day')[];
  /** Set when a user-scope key ran the export: the file holds only that user's rows. */
  readonly userId: string | null;
  readonly version: number;
  /** File name, e.g. `usage-daily-2026-11-25.v1.csv`. */
  readonly fileName: string;
  /** Absolute path of the file in BILLING_EXPORT_DIR. */
  readonly path: string;
  /** Hex SHA-256 of the file's bytes. */
  readonly sha256: string;
  readonly bytes: number;
  /** Data rows (the header not counted). */
  readonly rows: number;
  /** Exact total cost of the file, USD with 9 decimals. */
  readonly totalCostUsd: string;
}

/** What a destination reports for one export; stored with the export and shown by the API. */
export interface ExportDeliveryResult {
  /** Where the file went (a URL, a bucket key, a folder), for people reading the export record. */
  readonly location?: string;
  /** Anything else worth keeping (an upload id, an ETag); small and JSON-serialisable. */
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
}

/**
 * Where a finished export is sent: the local folder (built in), an S3-compatible store, a billing
 * system. `deliver` is called once per new export version; a failure is stored with the export
 * (status `failed` with the message) and never fails the export or the other destinations.
 */
export interface ExportDestination {
  /** Unique, 1-64 characters of a-z, 0-9, _ and -; labels the stored result and log lines. */
  readonly name: string;
  deliver(file: FinishedExport): Promise<ExportDeliveryResult | void>;
}

/** Injection token of the array of every export destination (built-in and plugins). */
export const EXPORT_DESTINATIONS = Symbol('EXPORT_DESTINATIONS');

/** An export destination plugin module, named in BILLING_EXPORT_DESTINATION_PLUGINS. */
export interface ExportDestinationPluginModule extends PluginModuleBase {
  createExportDestination(options: PluginOptions): ExportDestination | Promise<ExportDestination>;
}
