/**
 * Which tensorflow.js the study trains with: tfjs-node (backend
 * 'tensorflow', native TensorFlow) when it loads, else @tensorflow/tfjs on
 * the pure-JS 'cpu' backend. The choice is reported, never silent.
 */
import type * as TfNamespace from '@tensorflow/tfjs';

export type Tf = typeof TfNamespace;

export interface LoadedTf {
  tf: Tf;
  /** 'tensorflow' or 'cpu' */
  backend: string;
  /** One line for the log and the results: package, backend, and why a fallback happened. */
  note: string;
}

let loaded: LoadedTf | undefined;

/**
 * tfjs-node 4.22 runs on TensorFlow 2.21 here, whose Round kernel returns 0
 * for int32 input (tfjs expects the identity). Route int32 Round to Identity;
 * idempotent. The second TF 2.21 difference (histogram buckets of constant
 * tensors) only matters for TensorBoard callbacks, which the study does not use.
 */
function patchTf221Round(tf: Tf): void {
  const round = tf.getKernel('Round', 'tensorflow') as (TfNamespace.KernelConfig & {seglossInt32?: boolean}) | undefined;
  if (!round || round.seglossInt32) return;
  tf.unregisterKernel('Round', 'tensorflow');
  tf.registerKernel({
    kernelName: 'Round', backendName: 'tensorflow', seglossInt32: true,
    kernelFunc: (args) => {
      const x = args.inputs.x as TfNamespace.Tensor;
      if (x.dtype === 'int32') {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        return (args.backend as any).executeSingleInput('Identity', x);
      }
      return round.kernelFunc(args);
    },
  } as TfNamespace.KernelConfig);
}

/** Loads tfjs once per process. `prefer: 'cpu'` skips tfjs-node (tests of the fallback path). */
export function loadTf(prefer: 'auto' | 'cpu' = 'auto'): LoadedTf {
  if (loaded) return loaded;
  let why = 'asked for the cpu backend';
  if (prefer === 'auto') {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const tf = require('@tensorflow/tfjs-node') as Tf;
      patchTf221Round(tf);
      loaded = {tf, backend: tf.getBackend(), note: `@tensorflow/tfjs-node, backend '${tf.getBackend()}'`};
      return loaded;
    } catch (e) {
      why = `@tensorflow/tfjs-node could not be loaded: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  let tf: Tf;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    tf = require('@tensorflow/tfjs') as Tf;
  } catch (e) {
    // Neither is a dependency of segloss: a user of the typed-array API needs neither.
    throw new Error(`segloss study trains with tensorflow.js, which is not installed here (${why}; ` +
                    `@tensorflow/tfjs: ${(e as Error).message.split('\n')[0]}). Install it: ` +
                    '`npm install @tensorflow/tfjs-node` (native TensorFlow, about 75x faster) or `npm install @tensorflow/tfjs`.');
  }
  tf.setBackend('cpu');
  loaded = {tf, backend: 'cpu', note: `FALLBACK to @tensorflow/tfjs, backend 'cpu' (${why}); pure-JS conv3d is slow`};
  return loaded;
}
