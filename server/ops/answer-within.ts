/**
 * Resolves as `check()` does, or rejects with "no answer within N s" once `timeoutMs` passed:
 * health checks (/readyz, /metrics) must not hang on a store or Redis that stopped answering.
 */
export async function answerWithin(check: () => Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    await Promise.race([check(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
