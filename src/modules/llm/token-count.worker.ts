// The worker thread's side of TokenCountPool: one TokenCounter (its encoders loaded once per thread).
import type { CountJob } from './token-count.pool';
import { countJob, TokenCounter } from './token-count';

const counter = new TokenCounter();

export default function count(job: CountJob): number {
  return countJob(counter, job);
}
