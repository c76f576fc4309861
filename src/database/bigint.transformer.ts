import type { ValueTransformer } from 'typeorm';

/** PostgreSQL returns BIGINT as a string, SQLite as a number; entities always see a number. */
export const bigintToNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null || value === undefined ? null : Number(value)),
};
