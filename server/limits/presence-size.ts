/**
 * The UTF-8 size of `JSON.stringify(value)`, counted only until it passes `limit`: the
 * answer is exact up to `limit` and `limit + 1` for anything larger. A presence value came
 * out of a frame already bounded by MAX_FRAME_BYTES, but serialising up to a megabyte per
 * message to learn it is over 16 KB would make an oversized flood cost the full size each
 * time; this walk stops at the first `limit` bytes (a string longer than what is left is
 * over without being read: each UTF-16 unit is at least one UTF-8 byte).
 */
export function jsonByteLength(value: unknown, limit: number): number {
  const over = limit + 1;
  let total = 0;
  // Parsed JSON has no cycles, and its depth is bounded by the frame check: a plain stack.
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    if (total > limit) return over;
    const item = stack.pop();
    if (typeof item === 'string') {
      if (item.length + 2 > over - total) return over;
      total += Buffer.byteLength(JSON.stringify(item));
    } else if (item === null || typeof item !== 'object') {
      // Numbers, booleans, null; anything JSON cannot hold is written as null in arrays.
      total += (JSON.stringify(item) ?? 'null').length;
    } else if (Array.isArray(item)) {
      total += 2 + Math.max(0, item.length - 1);
      if (total > limit) return over;
      for (let i = item.length - 1; i >= 0; i--) stack.push(item[i]);
    } else {
      let keys = 0;
      total += 2;
      for (const key in item) {
        if (!Object.hasOwn(item, key)) continue;
        // Key, quotes and escapes, then the colon; a comma before every key but the first.
        total += (keys++ > 0 ? 1 : 0) + (key.length + 2 > over - total ? over : Buffer.byteLength(JSON.stringify(key))) + 1;
        if (total > limit) return over;
        stack.push((item as Record<string, unknown>)[key]);
      }
    }
  }
  return total > limit ? over : total;
}
