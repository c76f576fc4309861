import { HttpStatus } from '@nestjs/common';
import { DomainException } from '../../common/domain.exception';

/** A bad period or filter; the message names the field. */
export class BillingInvalidInputException extends DomainException {
  readonly code = 'BILLING_INVALID_INPUT';
  readonly status = HttpStatus.BAD_REQUEST;
}

export class BillingExportNotFoundException extends DomainException {
  readonly code = 'BILLING_EXPORT_NOT_FOUND';
  readonly status = HttpStatus.NOT_FOUND;
  constructor(id: string) {
    super(`Billing export "${id}" not found`);
  }
}

/** The export's file is missing from BILLING_EXPORT_DIR (removed by hand, or another replica's disk). */
export class BillingExportFileMissingException extends DomainException {
  readonly code = 'BILLING_EXPORT_FILE_MISSING';
  readonly status = HttpStatus.GONE;
  constructor(fileName: string) {
    super(`The file ${fileName} of this export is not in BILLING_EXPORT_DIR on this instance`);
  }
}

/** Another process is exporting the same period right now. */
export class BillingExportBusyException extends DomainException {
  readonly code = 'BILLING_EXPORT_BUSY';
  readonly status = HttpStatus.CONFLICT;
  constructor() {
    super('An export of this period, grouping and scope is running in another process; retry in a moment');
  }
}

/**
 * The period starts before the raw usage still kept (USAGE_RAW_RETENTION_DAYS): an export would
 * miss the calls retention removed, and, for a period exported before, supersede a complete file
 * with a partial one. Refused instead.
 */
export class BillingPeriodPastRetentionException extends DomainException {
  readonly code = 'BILLING_PERIOD_PAST_RETENTION';
  readonly status = HttpStatus.BAD_REQUEST;
  constructor(startIso: string, horizonIso: string, days: number) {
    super(
      `from (${startIso}) is before ${horizonIso}: raw usage older than USAGE_RAW_RETENTION_DAYS=${days} days has been removed, ` +
        'so an export of this period would not hold every call; earlier exports of it stay as they are',
    );
  }
}
