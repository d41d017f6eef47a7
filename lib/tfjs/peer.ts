/**
 * segloss/tfjs runs on the tensorflow.js its user loads, through
 * @tensorflow/tfjs-core: an optional peer dependency, which the typed-array
 * API never loads. This module is imported before anything that imports
 * tfjs-core, so that where it is missing the error names the package and
 * what to install instead of Node's bare "Cannot find module".
 */
try {
  require.resolve('@tensorflow/tfjs-core');
} catch {
  throw new Error(
    'segloss/tfjs needs @tensorflow/tfjs-core, which is not installed (an optional peer dependency of segloss). ' +
    'Install tensorflow.js: `npm install @tensorflow/tfjs-node` (native TensorFlow) or ' +
    '`npm install @tensorflow/tfjs` (pure JS); the typed-array API (`segloss`) does not need it.');
}
export {};
