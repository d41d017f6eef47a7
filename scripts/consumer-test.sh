#!/usr/bin/env bash
# The package as a user gets it: `npm pack`, then `npm install` of the
# tarball into a fresh project with cmake, the C/C++ compilers, make and nvcc
# off PATH (stand-ins that record any call take their place), so the install
# must take the prebuilt addon. Then the public entry points: require() and
# ESM import, the paper's binary example, a TypeScript file under
# `tsc --strict`, segloss/tfjs without and with tensorflow.js, and
# `npx segloss study --help`. Prints the tarball's size and contents and the
# install time. Called by CI after `npm run prebuild`; compiles nothing.
#
# usage: bash scripts/consumer-test.sh [WORKDIR]   (default: a new mktemp -d)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/segloss-consumer.XXXXXX)}
fail() { echo "consumer test FAILED: $*" >&2; exit 1; }
# (a WORKDIR is emptied first, so only an empty one or one this script made)
if [ -n "$(ls -A "$work" 2>/dev/null)" ]; then
  [ -e "$work/.segloss-consumer-test" ] || fail "$work is not empty and not a consumer-test folder"
  rm -rf "$work"
fi
mkdir -p "$work" && touch "$work/.segloss-consumer-test"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

ls "$repo"/prebuilds/linux-x64/*.node > /dev/null 2>&1 || fail "no prebuild in $repo/prebuilds/linux-x64 (run npm run prebuild)"

# ------------------------------------------------------------------ the tarball
(cd "$repo" && npm pack --silent --json --pack-destination "$work" > "$work/pack.json")
node - "$work/pack.json" <<'JS'
const [p] = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
console.log(`== tarball ${p.filename}: ${mb(p.size)} (${mb(p.unpackedSize)} unpacked), ${p.entryCount} files`);
const groups = new Map();
for (const f of p.files) {
  const parts = f.path.split('/');
  const key = parts.length > 2 ? parts.slice(0, 2).join('/') + '/' : parts.length > 1 ? parts[0] + '/' : f.path;
  const g = groups.get(key) || {n: 0, bytes: 0};
  g.n++; g.bytes += f.size; groups.set(key, g);
}
for (const [k, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes)) {
  console.log(`   ${k.padEnd(24)} ${String(g.n).padStart(4)} files ${(g.bytes / 1e3).toFixed(0).padStart(8)} kB`);
}
const paths = p.files.map((f) => f.path);
const must = ['prebuilds/linux-x64/segloss.napi.glibc.node', 'dist/lib/index.js', 'dist/lib/index.d.ts',
              'dist/lib/tfjs/index.js', 'dist/study/cli.js', 'native/addon.cc', 'cuda/backend.cu',
              'CMakeLists.txt', 'scripts/install.js', 'scripts/nvcc-record.sh', 'README.md', 'package.json'];
const missing = must.filter((f) => !paths.includes(f));
const banned = paths.filter((f) => /^(test|bench|docs|build|study|segloss-results|dist\/bench|dist\/test)\//.test(f) ||
                                   /\.(log|csv|svg|tgz)$/.test(f));
if (missing.length) { console.error(`missing from the tarball: ${missing.join(', ')}`); process.exit(1); }
if (banned.length) { console.error(`in the tarball but not for users: ${banned.slice(0, 10).join(', ')}`); process.exit(1); }
JS
tarball="$work/$(node -p "require('$work/pack.json')[0].filename")"

# ------------------------------------------ a PATH without build tools
# Only what npm and the install script need; in place of each build tool a
# stand-in that records the call and fails.
bin="$work/bin"
mkdir -p "$bin"
for t in node sh bash env cat ls mkdir rm cp mv ln chmod dirname basename uname tar gzip grep sed awk \
         head tail tr wc sort date mktemp readlink realpath true false printf; do
  p=$(command -v "$t") || continue
  ln -s "$(readlink -f "$p")" "$bin/$t"
done
# (npm and npx are scripts that find npm through their own path)
ln -sf "$(command -v npm)" "$bin/npm"
ln -sf "$(command -v npx)" "$bin/npx"
for t in cmake gcc g++ cc c++ clang clang++ make ninja nvcc ld; do
  printf '#!/bin/sh\necho "$0 $*" >> %s/compiler-calls\nexit 127\n' "$work" > "$bin/$t"
  chmod +x "$bin/$t"
done
run() { env PATH="$bin" CXX= CC= CUDACXX= "$@"; }

# ------------------------------------------------------- install, timed
app="$work/app"
mkdir -p "$app"
cat > "$app/package.json" <<'EOF'
{"name": "segloss-consumer", "version": "1.0.0", "private": true}
EOF
t0=$(now)
(cd "$app" && run npm install --no-audit --no-fund --foreground-scripts "$tarball") > "$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "npm install of the tarball"; }
install_s=$(secs "$t0")
grep -q 'segloss: using the prebuilt addon' "$work/install.log" || { cat "$work/install.log"; fail "the install did not take the prebuild"; }
[ ! -e "$work/compiler-calls" ] || fail "the install called build tools: $(cat "$work/compiler-calls")"
[ ! -e "$app/node_modules/segloss/build" ] || fail "the install made node_modules/segloss/build"
echo "== consumer npm install, without compilers on PATH: ${install_s} s ($(grep -o 'added [0-9]* packages' "$work/install.log"))"

# ------------------------------------------------------- the entry points
# The README's paper example (a binary map, C = 1): loss 0.31716...
cat > "$app/paper.js" <<'EOF'
const segloss = require('segloss');
const r = segloss.generalizedDice({
  prediction: new Float32Array([0.9, 0.6, 0.3, 0.1, 0.2, 0.05, 0.4, 0.15]),
  shape: [1, 8, 1],
  target: new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]),
  smoothNumerator: 0, smoothDenominator: 0,
});
if (Math.abs(r.loss - 0.31716) > 1e-5) throw new Error(`paper example: loss ${r.loss}, expected 0.31716`);
const [cpu, cuda] = ['cpu', 'cuda'].map((n) => segloss.backends().find((b) => b.name === n));
console.log(`require('segloss'): paper example loss ${r.loss.toFixed(5)}; CPU ${cpu.isa}; ` +
            `CUDA ${cuda.compiled ? 'compiled' : 'not compiled'}, ${cuda.available ? 'available' : `unavailable: ${cuda.reason}`}`);
EOF
cat > "$app/esm.mjs" <<'EOF'
import {dice, generalizedDice} from 'segloss';
import segloss from 'segloss';
const args = {prediction: new Float32Array([0.9, 0.6, 0.3, 0.1]), shape: [1, 4, 1], target: new Uint8Array([1, 1, 0, 0])};
const a = dice(args).loss;
if (!(a > 0 && a < 1) || segloss.dice(args).loss !== a || typeof generalizedDice !== 'function') throw new Error('ESM import');
console.log(`import {dice} from 'segloss': dice ${a.toFixed(5)}`);
EOF
cat > "$app/tfjs-missing.js" <<'EOF'
try {
  require('segloss/tfjs');
} catch (e) {
  if (!/@tensorflow\/tfjs-core/.test(e.message) || !/npm install/.test(e.message)) throw e;
  console.log(`require('segloss/tfjs') without tensorflow.js: ${e.message.split('. ')[0]}`);
  process.exit(0);
}
throw new Error('segloss/tfjs loaded without @tensorflow/tfjs-core');
EOF
cat > "$app/tfjs.js" <<'EOF'
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const {ops} = require('segloss/tfjs');
tf.setBackend('cpu');
const yPred = tf.tensor3d([0.9, 0.6, 0.3, 0.1, 0.2, 0.05, 0.4, 0.15], [1, 8, 1]);
const yTrue = tf.tensor2d([1, 1, 0, 0, 0, 0, 0, 0], [1, 8], 'int32');
const opts = {smoothNumerator: 0, smoothDenominator: 0};
const loss = ops.generalizedDice(yTrue, yPred, opts).dataSync()[0];
const g = tf.grad((p) => ops.generalizedDice(yTrue, p, opts))(yPred).dataSync();
if (Math.abs(loss - 0.31716) > 1e-5 || Math.abs(g[0] + 0.2339) > 1e-4) throw new Error(`segloss/tfjs: ${loss}, ${g[0]}`);
console.log(`require('segloss/tfjs') on tfjs-core + 'cpu': paper example loss ${loss.toFixed(5)}, gradient ${g[0].toFixed(4)}`);
EOF
cat > "$app/consumer.ts" <<'EOF'
import {generalizedDice, weightedCrossEntropy, lossStats, mergeStats, lossFromStats, backends} from 'segloss';
import type {CommonArgs, GeneralizedDiceArgs, LossResult} from 'segloss';
import {ops, losses} from 'segloss/tfjs';

const base: CommonArgs = {prediction: new Float32Array(8).fill(0.5), shape: [1, 8, 1], target: new Uint8Array(8)};
const gdl: GeneralizedDiceArgs = {...base, weighting: 'simple', device: 'auto'};
const r: LossResult = generalizedDice(gdl);
const g: Float32Array | undefined = r.gradient;
const w: number = weightedCrossEntropy({...base, classWeights: 'inverse-frequency'}).loss;
const s = mergeStats(lossStats('generalizedDice', gdl), lossStats('generalizedDice', gdl));
const fromStats: number = lossFromStats(s).loss;
const names: string[] = backends().map((b) => b.name);
const op: typeof ops.dice = ops.dice;
const fn = losses.generalizedDice({activation: 'softmax'});
export {g, w, fromStats, names, op, fn};
EOF
(cd "$app" && run node paper.js) || fail "require('segloss') and the paper's example"
(cd "$app" && run node esm.mjs) || fail "import {dice} from 'segloss'"
(cd "$app" && run node tfjs-missing.js) || fail "segloss/tfjs without tensorflow.js"
out=$(cd "$app" && run npx --no-install segloss study --help) || fail "npx segloss study --help"
grep -q '^usage: segloss study' <<< "$out" || fail "npx segloss study --help printed: $out"
echo "npx segloss study --help: $(head -1 <<< "$out")"
if (cd "$app" && run npx --no-install segloss study --preset tiny --out "$work/study") > "$work/study.log" 2>&1; then
  fail "segloss study ran without tensorflow.js"
fi
grep -q 'npm install @tensorflow/tfjs-node' "$work/study.log" || { cat "$work/study.log"; fail "segloss study without tensorflow.js"; }
echo "npx segloss study without tensorflow.js: says to install @tensorflow/tfjs-node"

# tensorflow.js's core and CPU backend (pure JS) for segloss/tfjs, and Node's
# types for TypeScript (the versions the checkout has, so from npm's cache)
version() { node -p "require('$repo/node_modules/$1/package.json').version"; }
t0=$(now)
(cd "$app" && run npm install --no-audit --no-fund "@tensorflow/tfjs-core@$(version @tensorflow/tfjs-core)" \
   "@tensorflow/tfjs-backend-cpu@$(version @tensorflow/tfjs-backend-cpu)" "@types/node@$(version @types/node)") \
  > "$work/install-tfjs.log" 2>&1 || { cat "$work/install-tfjs.log"; fail "npm install @tensorflow/tfjs-core"; }
echo "   (npm install @tensorflow/tfjs-core @tensorflow/tfjs-backend-cpu @types/node: $(secs "$t0") s)"
(cd "$app" && run node tfjs.js) || fail "segloss/tfjs on tensorflow.js"

# TypeScript with the checkout's compiler, under both module resolutions users have
tsc=(node "$repo/node_modules/typescript/bin/tsc" --strict --noEmit --target es2020 consumer.ts)
(cd "$app" && run "${tsc[@]}" --module node16 --moduleResolution node16) || fail "tsc --strict (node16)"
(cd "$app" && run "${tsc[@]}" --module commonjs --moduleResolution node10) || fail "tsc --strict (node10)"
echo "tsc --strict consumer.ts: compiles (moduleResolution node16 and node10)"
[ ! -e "$work/compiler-calls" ] || fail "build tools were called: $(cat "$work/compiler-calls")"
echo "== consumer test passed in $work"
