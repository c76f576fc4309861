import type { UsageOperation } from './usage-record';

/**
 * The seam in front of every LLM call. Before the call, each registered policy may refuse it or
 * reserve its worst-case cost; after the call (success or failure), the reservation is settled
 * with the real cost. Budgets and quotas plug in here without touching the client.
 */
export interface LlmCallIntent {
  readonly taskId: string | null;
  readonly userId: string | null;
  readonly provider: string;
  readonly model: string;
  readonly operation: UsageOperation;
  /** Worst-case cost of the call in nano-dollars (prompt estimate + max output); null when unpriced. */
  readonly maxCostNanos: number | null;
  /** Worst-case tokens of the call (prompt estimate + max output), for token limits. */
  readonly maxTokens?: number;
}

/** What a call really used, passed to `settle` next to its cost. */
export interface LlmCallActual {
  /** Input + output tokens of the call (0 when it failed before any was used). */
  readonly totalTokens: number;
}

export interface LlmAdmissionReservation {
  /** Called exactly once after the call with its real cost (null when unpriced). */
  settle(actualCostNanos: number | null, actual?: LlmCallActual): void | Promise<void>;
}

export interface LlmAdmissionPolicy {
  readonly name: string;
  /** Throw a domain exception to refuse the call; return a reservation (or nothing) to allow it. */
  admit(intent: LlmCallIntent): Promise<LlmAdmissionReservation | void>;
}

/** Injection token of the array of admission policies (empty by default). */
export const LLM_ADMISSION_POLICIES = Symbol('LLM_ADMISSION_POLICIES');
