// A tiny typed-by-convention event emitter: the page subscribes with `on`,
// which returns the function that unsubscribes.

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
  }

  /** @param {string} name @param {(detail: any) => void} listener @returns {() => void} */
  on(name, listener) {
    let set = this._listeners.get(name);
    if (!set) this._listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** @param {string} name @param {any} [detail] */
  emit(name, detail) {
    for (const listener of [...(this._listeners.get(name) ?? [])]) {
      try {
        listener(detail);
      } catch (error) {
        // One broken listener must not stop the others or the client.
        console.error(`tkr client: a "${name}" listener failed`, error);
      }
    }
  }
}
