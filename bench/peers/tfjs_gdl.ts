/**
 * The peer: the same Generalized Dice loss composed from tfjs ops on
 * tfjs-node's 'tensorflow' backend (TensorFlow's C library, its own thread
 * pool), loss and gradient by tf.valueAndGrad:
 *
 *   G_l = sum_n r_nl, P_l = sum_n p_nl, I_l = sum_n p_nl r_nl   (r = oneHot(labels);
 *         summed axis by axis, see classSums)
 *   w_l = 1 / G_l^2, an absent class (w_l not finite) gets the largest finite
 *         w_l, and all w_l = 0 when none is finite (tf.where)
 *   loss = 1 - (2 sum_l w_l I_l + 1e-5) / (sum_l w_l (P_l + G_l) + 1e-5)
 *
 * i.e. segloss's defaults: weighting 'square', smoothNumerator =
 * smoothDenominator = 1e-5, includeBackground true, reduction 'pooled',
 * activation 'none'. The weights depend on the labels only, so no gradient
 * flows through them, as in segloss.
 *
 * Timed: tf.oneHot of the int32 labels tensor, the forward ops, the backward
 * ops, and dataSync() of the loss and of the gradient (without it tfjs would
 * not have to finish the work, and segloss's result is a Float32Array too).
 * Outside the timing: the prediction tensor and the int32 labels tensor.
 *
 * @tensorflow/tfjs-node is no dependency of segloss (`npm start` and CI install it): loadTf() returns null with
 * the reason when it cannot be loaded, and the bench skips the peer. The few
 * tfjs functions used are typed by hand below so that bench/ compiles without it.
 */

/** An opaque tfjs tensor. */
export interface Tensor {
  readonly shape: number[];
  dataSync(): Float32Array | Int32Array | Uint8Array;
  dispose(): void;
}
type Operand = Tensor | number;

/** The part of the tfjs API the peer uses. */
export interface Tf {
  version: Record<string, string>;
  getBackend(): string;
  tensor(values: Float32Array | Int32Array, shape: number[], dtype?: string): Tensor;
  tidy(fn: () => void): void;
  oneHot(indices: Tensor, depth: number): Tensor;
  cast(x: Tensor, dtype: string): Tensor;
  sum(x: Tensor, axis?: number | number[]): Tensor;
  max(x: Tensor): Tensor;
  mul(a: Operand, b: Operand): Tensor;
  add(a: Operand, b: Operand): Tensor;
  sub(a: Operand, b: Operand): Tensor;
  div(a: Operand, b: Operand): Tensor;
  square(x: Tensor): Tensor;
  softmax(x: Tensor): Tensor;
  reciprocal(x: Tensor): Tensor;
  isFinite(x: Tensor): Tensor;
  where(cond: Tensor, a: Tensor, b: Tensor): Tensor;
  zerosLike(x: Tensor): Tensor;
  broadcastTo(x: Tensor, shape: number[]): Tensor;
  valueAndGrad(f: (x: Tensor) => Tensor): (x: Tensor) => {value: Tensor; grad: Tensor};
}

export type TfLoad = {tf: Tf; version: string; backend: string} | {tf: null; reason: string};

/** Loads tfjs-node (TF_CPP_MIN_LOG_LEVEL defaults to 2 to quiet TensorFlow's C++ log). */
export function loadTf(): TfLoad {
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const tf = require('@tensorflow/tfjs-node') as Tf;
    const backend = tf.getBackend();
    if (backend !== 'tensorflow') return {tf: null, reason: `tfjs-node loaded but its backend is '${backend}', not 'tensorflow'`};
    return {tf, version: tf.version['tfjs-node'] ?? tf.version.tfjs ?? 'unknown', backend};
  } catch (e) {
    return {tf: null, reason: `@tensorflow/tfjs-node could not be loaded (${(e as Error).message.split('\n')[0]})`};
  }
}

/**
 * Per-channel sums over every other axis (one pooled group), one axis at a
 * time from the last spatial axis to the batch axis. Why not one
 * tf.sum(x, [0, 1, ..., k]): TensorFlow's CPU kernel then adds the ~D^3 values
 * of a channel one after the other in float32, and at 128^3 the background's
 * P_0 (about 1.9e6) comes out 0.56 % too large (1887375 instead of 1876792),
 * which moves the loss by 3e-4 relative; axis by axis, no float32 running sum
 * is longer than D terms and the sums agree with float64 to ~1e-6.
 */
export function classSums(tf: Tf, x: Tensor): Tensor {
  let s = x;
  for (let axis = x.shape.length - 2; axis >= 0; axis--) s = tf.sum(s, axis);
  return s;
}

/** The GDL of the file header on a channels-last prediction and a one-hot target of the same shape. */
export function gdl(tf: Tf, p: Tensor, r: Tensor): Tensor {
  const G = classSums(tf, r);
  const P = classSums(tf, p);
  const I = classSums(tf, tf.mul(p, r));
  const raw = tf.reciprocal(tf.square(G));             // +Inf where G_l = 0
  const finite = tf.isFinite(raw);
  const largest = tf.max(tf.where(finite, raw, tf.zerosLike(raw)));  // 0 when none is finite
  const w = tf.where(finite, raw, tf.broadcastTo(largest, raw.shape));
  const num = tf.add(tf.mul(2, tf.sum(tf.mul(w, I))), 1e-5);
  const den = tf.add(tf.sum(tf.mul(w, tf.add(P, G))), 1e-5);
  return tf.sub(1, tf.div(num, den));
}

/** One volume's peer: inputs as tensors (made here, outside any timing) and the timed function. */
export class TfjsGdl {
  readonly name: string;
  private readonly pred: Tensor;
  private readonly labels: Tensor;
  private readonly vg: (x: Tensor) => {value: Tensor; grad: Tensor};
  /** Results of the last run. */
  loss = NaN;
  gradient: Float32Array = new Float32Array(0);

  /**
   * activation 'softmax': the prediction holds logits and the composite
   * starts with tf.softmax over the channels (inside the differentiated
   * function, as segloss's fused softmax).
   */
  constructor(private readonly tf: Tf, version: string, prediction: Float32Array, shape: number[], labels: Uint8Array,
              activation: 'none' | 'softmax' = 'none') {
    this.name = `tfjs-node ${version} (tf ops + tf.valueAndGrad)`;
    this.pred = tf.tensor(prediction, shape, 'float32');
    this.labels = tf.tensor(Int32Array.from(labels), shape.slice(0, -1), 'int32');
    const C = shape[shape.length - 1];
    // valueAndGrad closes over the labels; the one-hot target is built inside
    // the differentiated function, so inside the timing.
    this.vg = tf.valueAndGrad((x: Tensor) =>
      gdl(tf, activation === 'softmax' ? tf.softmax(x) : x, tf.cast(tf.oneHot(this.labels, C), 'float32')));
  }

  /**
   * A training step's loss and gradient: the loss read back, the gradient
   * left in TensorFlow for the next op (tfjs-node runs ops synchronously, so
   * it is computed by the time valueAndGrad returns).
   */
  step(): void {
    this.tf.tidy(() => {
      this.loss = this.vg(this.pred).value.dataSync()[0];
    });
  }

  /** Loss + gradient, both read back to JS (the timed work). */
  run(): void {
    this.tf.tidy(() => {
      const {value, grad} = this.vg(this.pred);
      this.loss = value.dataSync()[0];
      this.gradient = grad.dataSync() as Float32Array;
    });
  }

  dispose(): void {
    this.pred.dispose();
    this.labels.dispose();
  }
}
