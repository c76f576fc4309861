// Used by the TypeORM CLI (`npm run migration:generate`); the service itself uses DatabaseModule.
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { databaseConfig } from '../config/database.config';
import { buildTypeOrmOptions } from './typeorm-options';

export default new DataSource({
  ...buildTypeOrmOptions(databaseConfig()),
  entities: [__dirname + '/../modules/**/entities/*.entity.{ts,js}'],
});
