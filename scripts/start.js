#!/usr/bin/env node
// `npm start`: the quick study (README "Study"), which trains on tfjs-node.
//
// @tensorflow/tfjs-node is no dependency of segloss, not even an optional
// one (as one, every user got its install script, which downloads
// libtensorflow or compiles), so `npm install` leaves it out and it is
// installed here first: with the offline installer when one is at hand
// (SEGLOSS_TFJS_NODE_INSTALLER, or ../shared/tools/install-tfjs-node-offline.sh
// beside this checkout), else from the registry. Without tfjs-node at all,
// the quick study would run on @tensorflow/tfjs's pure-JS 'cpu' backend for
// hours (one 2D configuration measured 343 s there against 4.6 s on
// tfjs-node), so the tiny preset runs instead and the message says how to
// get the quick one.
// Extra arguments go to `segloss study`.
'use strict';
const {spawnSync} = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

function hasTfjsNode() {
  const r = spawnSync(process.execPath, ['-e', "require('@tensorflow/tfjs-node')"], {cwd: root, stdio: 'ignore'});
  return r.status === 0;
}

let ready = hasTfjsNode();
const installer = process.env.SEGLOSS_TFJS_NODE_INSTALLER ||
  path.join(root, '..', 'shared', 'tools', 'install-tfjs-node-offline.sh');
if (!ready && fs.existsSync(installer)) {
  console.error(`segloss: @tensorflow/tfjs-node is not installed; installing it offline with ${installer} (about a minute)`);
  const r = spawnSync('bash', [installer, root], {cwd: root, stdio: 'inherit'});
  ready = r.status === 0 && hasTfjsNode();
  if (!ready) console.error('segloss: the offline install of @tensorflow/tfjs-node failed (see above)');
} else if (!ready) {
  // the version of the tfjs the tests run on (devDependencies)
  const spec = `@tensorflow/tfjs-node@${require(path.join(root, 'package.json')).devDependencies['@tensorflow/tfjs']}`;
  console.error(`segloss: @tensorflow/tfjs-node is not installed; installing it: npm install --no-save ${spec}`);
  const r = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', spec], {cwd: root, stdio: 'inherit'});
  ready = r.status === 0 && hasTfjsNode();
  if (!ready) console.error('segloss: npm could not install @tensorflow/tfjs-node (see above)');
}

let preset = 'quick';
if (!ready) {
  preset = 'tiny';
  console.error([
    'segloss: @tensorflow/tfjs-node is not available, and the quick study on the pure-JS \'cpu\' backend would take',
    'hours (about 75x slower). Running the tiny preset instead, to show every output; for the quick study',
    'install tfjs-node (`npm install @tensorflow/tfjs-node`, or offline: SEGLOSS_TFJS_NODE_INSTALLER=<script>)',
    'and run `npm start` again.',
  ].join('\n'));
}
const r = spawnSync(process.execPath, [path.join(root, 'dist', 'study', 'cli.js'), 'study', '--preset', preset,
  ...process.argv.slice(2)], {cwd: root, stdio: 'inherit'});
process.exit(r.status === null ? 1 : r.status);
