/** The benchmark's markdown table: per workload and metric, each side, Tandem/stock, target. */
import type { MachineInfo } from '../result.js';
import { fmtBytes } from '../summary.js';
import { METRICS, type SideOutcome } from './metrics.js';
import type { WorkloadOutcome } from './run-suite.js';

/** Mean of a figure over a side's rounds (null when no round produced it). */
export function meanFigure(runs: readonly SideOutcome[] | undefined, key: string): number | null {
  const values = (runs ?? []).map((r) => r.figures[key]).filter((v): v is number => typeof v === 'number');
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

const fmt = (v: number | null, digits: number) =>
  v === null ? 'n/a' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Mean, and the range over rounds when there were several (the spread is the noise). */
function cell(runs: readonly SideOutcome[] | undefined, key: string, digits: number): string {
  const values = (runs ?? []).map((r) => r.figures[key]).filter((v): v is number => typeof v === 'number');
  const mean = meanFigure(runs, key);
  if (values.length < 2) return fmt(mean, digits);
  return `${fmt(mean, digits)} (${fmt(Math.min(...values), digits)}–${fmt(Math.max(...values), digits)})`;
}

export function benchTable(outcomes: readonly WorkloadOutcome[], sides: readonly string[]): string {
  const header = ['Workload', 'Metric', ...sides, 'Tandem/stock', 'Target', 'Met'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const o of outcomes) {
    for (const [i, m] of METRICS[o.id].entries()) {
      const cells = sides.map((s) => cell(o.runs[s], m.key, m.digits));
      const t = meanFigure(o.runs.tandem, m.key);
      const s = meanFigure(o.runs.stock, m.key);
      const ratio = t !== null && s !== null && s !== 0 ? t / s : null;
      let met = '';
      if (m.target && t !== null) {
        const okValue = m.target.value ? m.target.value(t) : true;
        const okRatio = m.target.ratio ? ratio !== null && m.target.ratio(ratio) : true;
        met = okValue && okRatio ? 'yes' : '**no**';
      }
      const ratioText = ratio === null ? 'n/a' : `${ratio.toFixed(2)}× (${m.better} is better)`;
      lines.push(`| ${i === 0 ? o.id : ''} | ${m.label} | ${cells.join(' | ')} | ${ratioText} | ${m.target?.text ?? ''} | ${met} |`);
    }
  }
  return lines.join('\n');
}

export function failuresOf(outcomes: readonly WorkloadOutcome[]): string[] {
  const failures: string[] = [];
  for (const o of outcomes) {
    for (const [side, runs] of Object.entries(o.runs)) {
      for (const r of runs) {
        if (r.error || !r.converged) failures.push(`${o.id} ${side}: ${r.error ?? 'did not converge'}`);
      }
    }
  }
  return failures;
}

export function machineLine(m: MachineInfo, freeText: string): string {
  return `${m.cpus} CPU (${m.cpuModel}), ${fmtBytes(m.totalMemBytes)} RAM${freeText}, Node ${m.node}, ${m.platform}`;
}
