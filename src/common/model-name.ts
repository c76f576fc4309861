/**
 * Longest model name the service takes, in characters: `llm_usage.requested_model`,
 * `llm_usage.response_model`, `usage_rollups.requested_model` and `tasks.model` are varchar(128).
 * A longer name is refused where it enters (the gateway, the task API, LlmClient, TASK_DEFAULT_MODEL)
 * rather than cut where it is stored, where two long names could merge into one.
 */
export const MAX_MODEL_NAME_LENGTH = 128;
