import { Global, Module } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { databaseConfig } from '../config/database.config';
import { DataSourcesLifecycle, openMainDataSource, openParallelReadDataSources, openReadDataSource, openWriteDataSource, PARALLEL_READ_DATA_SOURCES, READ_DATA_SOURCE, WRITE_DATA_SOURCE } from './data-sources';
import { buildTypeOrmOptions } from './typeorm-options';

// Global like TypeORM's own DataSource: every module may inject the read and write sides.
@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [databaseConfig.KEY],
      useFactory: (db: ConfigType<typeof databaseConfig>) => ({
        ...buildTypeOrmOptions(db),
        autoLoadEntities: true,
        // Fail fast at boot rather than retrying for minutes with a wrong DATABASE_URL.
        retryAttempts: 2,
        retryDelay: 1000,
      }),
      dataSourceFactory: async (options) => openMainDataSource(options!),
    }),
  ],
  providers: [
    {
      provide: READ_DATA_SOURCE,
      inject: [getDataSourceToken(), databaseConfig.KEY],
      useFactory: (main: DataSource, db: ConfigType<typeof databaseConfig>) => openReadDataSource(main, db),
    },
    {
      provide: WRITE_DATA_SOURCE,
      inject: [getDataSourceToken(), databaseConfig.KEY],
      useFactory: (main: DataSource, db: ConfigType<typeof databaseConfig>) => openWriteDataSource(main, db),
    },
    {
      provide: PARALLEL_READ_DATA_SOURCES,
      inject: [getDataSourceToken(), databaseConfig.KEY, READ_DATA_SOURCE],
      useFactory: (main: DataSource, db: ConfigType<typeof databaseConfig>, read: DataSource) => openParallelReadDataSources(main, db, read),
    },
    DataSourcesLifecycle,
  ],
  exports: [READ_DATA_SOURCE, WRITE_DATA_SOURCE, PARALLEL_READ_DATA_SOURCES],
})
export class DatabaseModule {}
