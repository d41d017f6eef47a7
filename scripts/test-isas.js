#!/usr/bin/env node
// Runs the CPU kernel suites once more under every instruction set this CPU
// and build support other than the default (SEGLOSS_ISA; native/cpu/isa.h):
// `npm test` covers the default one. Called by CI after `npm test`.
'use strict';
const {spawnSync} = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
const api = require(path.join(root, 'dist', 'lib'));
const cpu = api.backends().find((b) => b.name === 'cpu');
const suites = ['test/isa.test.ts', 'test/kernels.test.ts', 'test/golden.test.ts', 'test/threads.test.ts', 'test/errors.test.ts',
                'test/split_phase.test.ts'];
console.log(`CPU instruction sets here: ${cpu.isas.join(', ')} (default ${cpu.isa})`);
let failed = 0;
for (const isa of cpu.isas.filter((i) => i !== cpu.isa)) {
  console.log(`\n== SEGLOSS_ISA=${isa}: ${suites.join(' ')}`);
  const r = spawnSync(process.execPath, [require.resolve('jest/bin/jest'), ...suites],
                      {cwd: root, stdio: 'inherit', env: {...process.env, SEGLOSS_ISA: isa}});
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
