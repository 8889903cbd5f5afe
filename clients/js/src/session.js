// What the client holds of one session: its stored messages by seq, the
// replies being streamed, receipts, presence, agent statuses and tasks.
//
// Messages may arrive twice (a resend answered as a duplicate is emitted to
// the session again; a join replays what a live event already brought) and out
// of order (a broadcast lost between nodes). The rules of PROTOCOL.md apply:
// a seq already held is dropped, and a gap is fetched with message:history.
// `contiguous` is the highest seq up to which nothing is missing: it is the
// `since_seq` of the next join.

const RECEIPT_RANK = { sent: 0, delivered: 1, read: 2 };

export class SessionState {
  /** @param {object} session the Session object of PROTOCOL.md */
  constructor(session) {
    this.id = session.id;
    this.session = session;
    /** @type {Map<number, object>} stored messages by seq */
    this.bySeq = new Map();
    /** @type {Map<string, number>} message id → seq */
    this.seqOfId = new Map();
    /** Highest seq with nothing missing below it (down to the oldest held); null before the first join. */
    this.contiguous = null;
    /** Oldest seq held, for "load older". */
    this.oldest = null;
    this.hasOlder = false;
    /** @type {Map<string, {message_id: string, sender: object, index: number, text: string}>} */
    this.streams = new Map();
    /** @type {Map<string, string>} own message id → best receipt status */
    this.receipts = new Map();
    /** @type {Map<string, {member: object, state: string}>} */
    this.presence = new Map();
    /** @type {Map<string, {agent: object, state: string, detail: string, ts: string}>} */
    this.agentStatus = new Map();
    /** @type {Map<string, object>} task documents by task_id, from /tasks */
    this.tasks = new Map();
    /** @type {Map<string, {entry: object, error: object}>} sends the host refused for good, by client_id */
    this.failed = new Map();
    /** seqs this page already sent receipts for, by status */
    this.receiptsSent = { delivered: new Set(), read: new Set() };
    /** seqs the user saw while no receipt could be sent: sent after the next join */
    this.pendingReads = new Set();
    this.followed = false;
  }

  get lastSeq() {
    return this.session.last_seq ?? 0;
  }

  /**
   * Take in a stored message. Returns false when its seq is already held.
   * @param {object} message
   */
  ingest(message) {
    if (typeof message?.seq !== "number" || this.bySeq.has(message.seq)) return false;
    this.bySeq.set(message.seq, message);
    this.seqOfId.set(message.id, message.seq);
    // The final message of a stream replaces what was streamed.
    this.streams.delete(message.id);
    if (this.oldest === null || message.seq < this.oldest) this.oldest = message.seq;
    if (message.seq > (this.session.last_seq ?? 0)) this.session.last_seq = message.seq;
    if (this.contiguous === null) this.contiguous = message.seq;
    while (this.bySeq.has(this.contiguous + 1)) this.contiguous += 1;
    return true;
  }

  /**
   * The seqs missing between what is contiguous and the newest seq held:
   * `{before_seq, limit}` for a message:history call, or null without a gap.
   */
  gap() {
    if (this.contiguous === null) return null;
    let newest = this.contiguous;
    for (const seq of this.bySeq.keys()) if (seq > newest) newest = seq;
    if (newest === this.contiguous) return null;
    let next = this.contiguous + 1;
    while (!this.bySeq.has(next)) next += 1;
    // Messages before `next`, as many as are missing (history reads backwards).
    return { before_seq: next, limit: Math.min(200, next - this.contiguous - 1) };
  }

  /** After a gap could not be filled (the store has no such seqs), go on past it. */
  skipGap() {
    const gap = this.gap();
    if (gap) {
      this.contiguous = gap.before_seq;
      while (this.bySeq.has(this.contiguous + 1)) this.contiguous += 1;
    }
  }

  /** A stream picked up from a join: `{message_id, sender, index, text}`. */
  resumeStream(stream) {
    if (this.seqOfId.has(stream.message_id)) return;
    this.streams.set(stream.message_id, { ...stream });
  }

  /**
   * A `message:chunk`. Returns false for a chunk already held (its index is
   * not above what the join's text covered) or for a finished stream.
   */
  chunk({ message_id, index, delta }, guessSender) {
    if (this.seqOfId.has(message_id)) return false;
    const stream = this.streams.get(message_id);
    if (!stream) {
      this.streams.set(message_id, { message_id, sender: guessSender(), index, text: delta });
      return true;
    }
    if (index <= stream.index) return false;
    stream.index = index;
    stream.text += delta;
    return true;
  }

  /** A `receipt` for one of our messages; a later `delivered` never lowers a `read`. */
  receipt({ message_id, status }) {
    const held = this.receipts.get(message_id) ?? "sent";
    if ((RECEIPT_RANK[status] ?? -1) > RECEIPT_RANK[held]) this.receipts.set(message_id, status);
  }

  /**
   * A `task:update` or `task:get` answer. The snapshot a subscription starts
   * with can arrive after a newer update (the host sends it to one socket, the
   * updates to a room), so an older document never replaces a newer one. Age
   * is the seq of the message that made it (`updated_by_message`); a message
   * not held yet is newer than every one held (messages arrive in seq order),
   * and a document that names none (our placeholder) is the oldest.
   */
  taskUpdate(task) {
    const held = this.tasks.get(task.task_id);
    if (held && this._taskAge(held) > this._taskAge(task)) return false;
    this.tasks.set(task.task_id, task);
    return true;
  }

  _taskAge(task) {
    if (!task.updated_by_message) return -1;
    return this.seqOfId.get(task.updated_by_message) ?? Number.MAX_SAFE_INTEGER;
  }

  /** Stored messages, oldest first. */
  messages() {
    return [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
  }

  /** The agent members of the session. */
  agentMembers() {
    return (this.session.members ?? []).filter((member) => member.kind === "agent");
  }
}
