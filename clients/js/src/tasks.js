// Following the tasks a session's messages name, on /tasks (PROTOCOL.md 1.1):
// task:subscribe for each new task, task:get again once its messages settle,
// and every subscription again after /tasks reconnects.

const TASK_SETTLE_MS = 150;

export class TaskFollower {
  /** @param {import("./client.js").TkrClient} client */
  constructor(client) {
    this.client = client;
    /** @type {Map<string, any>} the settle timer of each `session|task` */
    this.timers = new Map();
  }

  /** A stored message: follow the task it names. */
  watch(state, message) {
    if (message.type !== "task" || !message.payload?.task_id) return;
    const taskId = message.payload.task_id;
    if (!state.tasks.has(taskId)) {
      state.tasks.set(taskId, { task_id: taskId, session_id: state.id, title: message.payload.title ?? taskId, state: "submitted", history: [], artifacts: [] });
      void this.call("task:subscribe", state.id, taskId);
    }
    // Read the task again once its messages have settled: task:update events
    // and task messages travel on different namespaces, in no common order,
    // and the answer made after this message is at least as new as it.
    const key = `${state.id}|${taskId}`;
    clearTimeout(this.timers.get(key));
    this.timers.set(key, setTimeout(async () => {
      this.timers.delete(key);
      const ack = await this.call("task:get", state.id, taskId);
      if (ack.ok && ack.task) this.client._withSession(state.id, (s) => s.taskUpdate(ack.task));
    }, TASK_SETTLE_MS));
  }

  async call(event, sessionId, taskId) {
    const tasks = this.client.connection.tasks;
    const ack = await this.client.call(event, { session_id: sessionId, task_id: taskId }, tasks);
    // A host on PROTOCOL.md 1.0 keys tasks by task_id alone.
    if (!ack.ok && ack.error?.code?.startsWith("validation.")) return this.client.call(event, { task_id: taskId }, tasks);
    return ack;
  }

  /** After /tasks reconnects: a new socket is in no task room. */
  resubscribe() {
    for (const state of this.client.sessions.values()) for (const taskId of state.tasks.keys()) void this.call("task:subscribe", state.id, taskId);
  }

  stop() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
