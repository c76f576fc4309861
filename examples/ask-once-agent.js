// An example third-party task agent: asks the model once where the bug is and reports its answer
// as the task's failure_detail, without changing the repository. A starting point for an agent of
// your own (see src/modules/tasks/agent for the built-in bug-fix agent).
//
//   TASK_AGENT_PLUGINS=./examples/ask-once-agent.js npm start
//   curl -X POST localhost:8000/api/v1/task/submit -H 'Content-Type: application/json' \
//     -d '{"repo_url":"https://github.com/example/repo","bug_description":"...","test_command":"npm test","agent":"ask-once"}'
//
// A plugin module exports createTaskAgent(options) returning { name, run(ctx) } (the TaskAgent
// interface of asa-backend/sdk, see docs/plugins.md). ctx.llm is already scoped to the task and its
// user, with the task's budget enforced: every call is recorded and charged like the built-in
// agent's. Stop when ctx.signal aborts (the task was cancelled or the service is shutting down).
'use strict';

exports.apiVersion = '1.0.0';

exports.createTaskAgent = function createTaskAgent(options) {
  const system = options.system || 'You are a senior engineer. Say in two sentences where the bug most likely is.';
  return {
    name: 'ask-once',
    async run(ctx) {
      await ctx.progress({ attempt: 1, stage: 'model' });
      const answer = await ctx.llm.chat(
        {
          model: ctx.task.model,
          messages: [
            { role: 'system', content: system },
            { role: 'user', content: `Repository: ${ctx.task.repoUrl}\nBug: ${ctx.task.bugDescription}` },
          ],
        },
        { signal: ctx.signal },
      );
      const text = answer.choices[0]?.message?.content ?? '';
      return { outcome: 'failed', reason: 'no_patch', attempts: 1, detail: `The model says: ${text}` };
    },
  };
};
