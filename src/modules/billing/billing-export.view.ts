import { localIso } from './billing-period';
import type { BillingExport, StoredDeliveryResult } from './entities/billing-export.entity';

/** An export as the API shows it (snake_case; money as exact 9-decimal strings). */
export function exportToJson(e: BillingExport) {
  return {
    id: e.id,
    kind: e.kind,
    period_start: localIso(e.periodStartMs, e.timeZone),
    period_end: localIso(e.periodEndMs, e.timeZone),
    time_zone: e.timeZone,
    group_by: e.groupBy.split(','),
    user_id: e.userId,
    version: e.version,
    status: e.status,
    file_name: e.fileName,
    sha256: e.sha256,
    bytes: e.bytes,
    rows: e.rows,
    totals: JSON.parse(e.totals) as Record<string, string | number>,
    destinations: JSON.parse(e.destinations) as StoredDeliveryResult[],
    created_by: e.createdBy,
    created_at: new Date(e.createdAtMs).toISOString(),
    superseded_at: e.supersededAtMs === null ? null : new Date(e.supersededAtMs).toISOString(),
    superseded_by: e.supersededBy,
    download_url: `/api/v1/billing/exports/${e.id}/download`,
  };
}
