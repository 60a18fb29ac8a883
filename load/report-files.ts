/** Writes a run's JSON and HTML reports. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { renderHtmlReport } from './report-html.js';
import type { LoadResult } from './result.js';

export async function writeReports(
  result: LoadResult,
  where: { outDir: string; json?: string; html?: string },
): Promise<{ json: string; html: string }> {
  const stamp = result.startedAt.replace(/[:.]/g, '-');
  const json = resolve(where.json ?? join(where.outDir, `load-${stamp}.json`));
  const html = resolve(where.html ?? join(where.outDir, `load-${stamp}.html`));
  await mkdir(dirname(json), { recursive: true });
  await mkdir(dirname(html), { recursive: true });
  await writeFile(json, JSON.stringify(result, null, 2) + '\n');
  await writeFile(html, await renderHtmlReport(result));
  return { json, html };
}
