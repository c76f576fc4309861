import { HttpStatus } from '@nestjs/common';
import { DomainException } from '../../common/domain.exception';

/** A rule sent to the API is invalid; the message starts with the field. */
export class QuotaRuleInvalidException extends DomainException {
  readonly code = 'QUOTA_RULE_INVALID';
  readonly status = HttpStatus.BAD_REQUEST;
}

/** A rule with this id exists already (in the API's rules or in QUOTAS_FILE). */
export class QuotaRuleExistsException extends DomainException {
  readonly code = 'QUOTA_RULE_EXISTS';
  readonly status = HttpStatus.CONFLICT;
}

/** Rules from QUOTAS_FILE are changed in the file, not through the API. */
export class QuotaRuleReadOnlyException extends DomainException {
  readonly code = 'QUOTA_RULE_READ_ONLY';
  readonly status = HttpStatus.FORBIDDEN;
}

export class QuotaRuleNotFoundException extends DomainException {
  readonly code = 'QUOTA_RULE_NOT_FOUND';
  readonly status = HttpStatus.NOT_FOUND;
}
