// The worker thread's side of TokenCountPool: one TokenEstimator (its encoders loaded once per thread).
import type { CountJob } from './token-count.pool';
import { countJob, TokenEstimator } from './token-estimator';

const estimator = new TokenEstimator();

export default function count(job: CountJob): number {
  return countJob(estimator, job);
}
