import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AlertDispatcher } from './alert-dispatcher.service';
import { AlertService } from './alert.service';
import { AlertTables } from './alert-tables';
import { AlertsController } from './alerts.controller';
import { AlertsModuleBase } from './alerts.module-definition';
import { AlertDelivery } from './entities/alert-delivery.entity';
import { Alert } from './entities/alert.entity';

/**
 * Alert state and dispatch. `AlertsModule.forRoot({ notifiers: [...] })` in AppModule lists the
 * built-in notifier classes (each listed only when configured); plugins come from
 * ALERT_NOTIFIER_PLUGINS. Global: quota evaluation injects AlertService without importing this.
 */
@Module({
  imports: [TypeOrmModule.forFeature([Alert, AlertDelivery])],
  controllers: [AlertsController],
  providers: [AlertTables, AlertDispatcher, AlertService],
  exports: [AlertService],
})
export class AlertsModule extends AlertsModuleBase {}
