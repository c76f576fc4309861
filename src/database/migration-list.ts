import { CreateLlmUsage1764198000000 } from './migrations/1764198000000-CreateLlmUsage';
import { CreateTasks1764199000000 } from './migrations/1764199000000-CreateTasks';
import { CreateAlerts1764310000000 } from './migrations/1764310000000-CreateAlerts';
import { CreateQuotas1764320000000 } from './migrations/1764320000000-CreateQuotas';
import { CreateBillingExports1764400000000 } from './migrations/1764400000000-CreateBillingExports';
import { AddLlmUsageTags1764500000000 } from './migrations/1764500000000-AddLlmUsageTags';
import { CreateUsageRollups1764600000000 } from './migrations/1764600000000-CreateUsageRollups';
import { RollupsFillfactor1764700000000 } from './migrations/1764700000000-RollupsFillfactor';
import { CreateGatewayTasks1764800000000 } from './migrations/1764800000000-CreateGatewayTasks';
import { CreateWeeklyUserRollup1764810000000 } from './migrations/1764810000000-CreateWeeklyUserRollup';
import { CreateTaskSummary1764820000000 } from './migrations/1764820000000-CreateTaskSummary';

/** Every migration, oldest first. Add new ones at the end. */
export const MIGRATIONS = [
  CreateLlmUsage1764198000000,
  CreateTasks1764199000000,
  CreateAlerts1764310000000,
  CreateQuotas1764320000000,
  CreateBillingExports1764400000000,
  AddLlmUsageTags1764500000000,
  CreateUsageRollups1764600000000,
  RollupsFillfactor1764700000000,
  CreateGatewayTasks1764800000000,
  CreateWeeklyUserRollup1764810000000,
  CreateTaskSummary1764820000000,
];
