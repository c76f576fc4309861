import { Injectable } from '@nestjs/common';
import { DataSource, Repository } from 'typeorm';
import { InjectWriteDataSource } from '../../../database/data-sources';
import { AlertDelivery } from './entities/alert-delivery.entity';
import { Alert } from './entities/alert.entity';

/**
 * The alert tables, on the task-state connection (see WRITE_DATA_SOURCE): on SQLite's main
 * connection an alert row written while the usage sink has a batch transaction open would be
 * undone with that batch's rollback.
 */
@Injectable()
export class AlertTables {
  constructor(@InjectWriteDataSource() private readonly db: DataSource) {}

  get alerts(): Repository<Alert> {
    return this.db.getRepository(Alert);
  }

  get deliveries(): Repository<AlertDelivery> {
    return this.db.getRepository(AlertDelivery);
  }
}
