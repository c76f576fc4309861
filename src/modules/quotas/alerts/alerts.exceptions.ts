import { HttpStatus } from '@nestjs/common';
import { DomainException } from '../../../common/domain.exception';

export class AlertBadRequestException extends DomainException {
  readonly code = 'ALERT_BAD_REQUEST';
  readonly status = HttpStatus.BAD_REQUEST;
  constructor(message: string) {
    super(message);
  }
}
