import { CreateLlmUsage1764198000000 } from './migrations/1764198000000-CreateLlmUsage';

/** Every migration, oldest first. Add new ones at the end. */
export const MIGRATIONS = [CreateLlmUsage1764198000000];
