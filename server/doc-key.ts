/**
 * One string key per document: its collection and id joined by NUL. Every map the server
 * keys by document uses it (the snapshot caches, the size records, the query poll cache,
 * what a connection was sent).
 */
export function docKey(collection: string, id: string): string {
  return `${collection}\u0000${id}`;
}

/** The collection and id a docKey was made of. */
export function splitDocKey(key: string): [collection: string, id: string] {
  const at = key.indexOf('\u0000');
  return [key.slice(0, at), key.slice(at + 1)];
}
