// `pnpm bench [ingress|sync|worker|soak|cluster|profile|ai|wecom]`: runs the benchmarks, prints the tables and writes bench/results/<date>.md.
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { benchAi } from './ai.js';
import { benchCluster } from './cluster.js';
import { benchIngress } from './ingress.js';
import { ROOT } from './lib.js';
import { benchProfile } from './profile.js';
import { benchSoak } from './soak.js';
import { benchSync } from './sync.js';
import { benchWecom } from './wecom.js';
import { benchWorker } from './worker.js';

const which = process.argv[2];
const sections: string[] = [];
if (!which || which === 'ingress') sections.push(await benchIngress());
if (!which || which === 'sync') sections.push(await benchSync());
if (!which || which === 'worker') sections.push(await benchWorker());
if (!which || which === 'soak') sections.push(await benchSoak());
if (!which || which === 'cluster') sections.push(await benchCluster());
if (!which || which === 'ai') sections.push(await benchAi());
if (!which || which === 'wecom') sections.push(await benchWecom());
// Not part of the full run: a diagnosis, not a figure to compare.
if (which === 'profile') sections.push(await benchProfile());

const version = (cmd: string) => {
  try {
    return execSync(cmd).toString().trim().split('\n')[0];
  } catch {
    return 'unknown';
  }
};
// A run from a tree with uncommitted changes says so: the commit alone would not be the code measured.
const status = version('git status --porcelain --untracked-files=no -- . :!bench/results');
const dirty = status !== '' && status !== 'unknown';
const date = new Date().toISOString().slice(0, 10);
const report = [
  `## wx-kf benchmarks, ${new Date().toISOString()}`,
  '',
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version};`,
  `${version('redis-server --version')}; commit ${version('git rev-parse --short HEAD')}${dirty ? ' plus uncommitted changes' : ''}. Command: \`pnpm bench${which ? ` ${which}` : ''}\`.`,
  '',
  ...sections.flatMap((s) => [s, '']),
].join('\n');
console.log(`\n${report}`);
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
const file = join(ROOT, 'bench/results', `${date}${which ? `-${which}` : ''}.md`);
writeFileSync(file, report);
console.log(`written to ${file}`);
process.exit(0);
