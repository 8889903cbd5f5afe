// The offline queue (outbox): messages the user sent that the host has not
// acknowledged yet. Each entry already carries its `client_id`, given when it
// was queued, so sending it again after a reload or a lost ack is a harmless
// duplicate on the host (PROTOCOL.md, Message: `client_id`).
//
// Two backends with the same four methods: IndexedDBQueue for browsers (it
// survives a reload) and MemoryQueue (tests, or a page that must not persist).
// Entries are returned in the order they were queued, per owner, so one
// browser profile can hold the queues of several hosts or principals.

/**
 * @typedef {object} QueueEntry
 * @property {string} client_id
 * @property {string} owner        whose queue: the client's `queueOwner`
 * @property {string} session_id
 * @property {string} type
 * @property {object} payload
 * @property {string} [to]
 * @property {string} [in_reply_to]
 * @property {string} queued_at    RFC 3339, when the user sent it
 * @property {number} order        ascending in queueing order
 */

/** A message's idempotency key, given once, when it is queued (PROTOCOL.md: 1–64 characters). */
export function newClientId() {
  return `c-${globalThis.crypto.randomUUID()}`;
}

let lastOrder = 0;

/** A strictly increasing order key, also across reloads (it starts from the clock). */
export function nextOrder() {
  lastOrder = Math.max(lastOrder + 1, Date.now() * 1000);
  return lastOrder;
}

export class MemoryQueue {
  constructor() {
    /** @type {Map<string, QueueEntry>} */
    this._entries = new Map();
  }

  /** @param {QueueEntry} entry */
  async add(entry) {
    this._entries.set(entry.client_id, structuredClone(entry));
  }

  /** @param {string} clientId */
  async remove(clientId) {
    this._entries.delete(clientId);
  }

  /** @param {string} owner @returns {Promise<QueueEntry[]>} */
  async all(owner) {
    return [...this._entries.values()].filter((e) => e.owner === owner).sort((a, b) => a.order - b.order).map((e) => structuredClone(e));
  }

  async close() {}
}

const STORE = "outbox";

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export class IndexedDBQueue {
  /**
   * @param {{name?: string, indexedDB?: IDBFactory, IDBKeyRange?: typeof IDBKeyRange}} [options]
   *   `indexedDB` and `IDBKeyRange` default to the browser's; tests pass fake-indexeddb's.
   */
  constructor({ name = "tkr-client", indexedDB = globalThis.indexedDB, IDBKeyRange = globalThis.IDBKeyRange } = {}) {
    if (!indexedDB || !IDBKeyRange) throw new Error("IndexedDB is not available here; use MemoryQueue");
    this._factory = indexedDB;
    this._range = IDBKeyRange;
    this._name = name;
    /** @type {Promise<IDBDatabase>|null} */
    this._db = null;
  }

  /** @returns {Promise<IDBDatabase>} */
  _open() {
    if (!this._db) {
      const request = this._factory.open(this._name, 1);
      request.onupgradeneeded = () => {
        const store = request.result.createObjectStore(STORE, { keyPath: "client_id" });
        store.createIndex("by_owner_order", ["owner", "order"]);
      };
      this._db = promised(request);
    }
    return this._db;
  }

  async _run(mode, work) {
    const db = await this._open();
    const tx = db.transaction(STORE, mode);
    const result = work(tx.objectStore(STORE));
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    });
    // `work` returns its IDBRequest; its result is final once the transaction completes.
    return result?.result;
  }

  /** @param {QueueEntry} entry */
  async add(entry) {
    await this._run("readwrite", (store) => store.put(entry));
  }

  /** @param {string} clientId */
  async remove(clientId) {
    await this._run("readwrite", (store) => store.delete(clientId));
  }

  /** @param {string} owner @returns {Promise<QueueEntry[]>} */
  async all(owner) {
    const range = this._range.bound([owner, -Infinity], [owner, Infinity]);
    return this._run("readonly", (store) => store.index("by_owner_order").getAll(range));
  }

  async close() {
    if (this._db) (await this._db).close();
    this._db = null;
  }
}
