import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ScriptRun {
  pid: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a repository TypeScript script (`load/bench.ts`, `load/cli.ts`…) through tsx to its
 * end, collecting its output; SIGKILLs it and rejects past `timeoutMs`.
 */
export function runTsxScript(script: string, args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ pid: child.pid ?? -1, code, stdout, stderr });
    });
  });
}
