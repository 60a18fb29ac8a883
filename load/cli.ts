/**
 * `npm run load -- …` (node --import tsx load/cli.ts …): the load tool standalone.
 * Exit code 0 = run completed and every client converged; 1 = divergence or a failed run;
 * 2 = bad options or no connection.
 */
import { loadCommand } from './command.js';

await loadCommand().name('tandem load').parseAsync(process.argv);
