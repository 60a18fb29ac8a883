/** Runs a Node-style callback API (`(err, value)`, as ShareDB's DBs and docs call back) as a promise. */
export function call<T>(run: (done: (err?: unknown, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => run((err, value) => (err ? reject(err) : resolve(value as T))));
}
