/**
 * The four networks of the study, in tfjs-layers, all fully convolutional
 * ('same' padding, so the effective patch is the input patch) and ending in
 * one logit channel per voxel (the losses fuse the sigmoid); TwoPathCNN and
 * DeepMedic are described at their builders below:
 *
 * - `unet2d`: a small 2D UNet (Ronneberger 2015) - two convolutions per step,
 *   two max-pool steps down, two up-sampling steps up, skip connections by
 *   concatenation. Input sides must be multiples of 4.
 * - `highresnet3d`: a small 3D HighResNet (Li et al. 2017): a 3^3 stem, then
 *   stages of pre-activated residual blocks (batch norm, ReLU, 3^3
 *   convolution, twice) at dilation 1, 2 and 4, the resolution kept
 *   throughout. Input sides must be multiples of 4.
 *
 * TensorFlow's CPU conv3d (tfjs-node) and tfjs's conv3d gradient have no
 * dilation, so a dilated 3D convolution is done here the way TensorFlow's
 * atrous convolution does it: space-to-batch by the rate, an undilated 3^3
 * convolution, batch-to-space. With 'same' zero padding and sides divisible
 * by the rate this is exactly the dilated convolution.
 */
import type * as TfNamespace from '@tensorflow/tfjs';

import type {Tf} from './tf';

export type NetName = 'unet2d' | 'twopath2d' | 'highresnet3d' | 'deepmedic3d';
export const NET_NAMES: NetName[] = ['unet2d', 'twopath2d', 'highresnet3d', 'deepmedic3d'];
export const NET_LABEL: Record<NetName, string> = {unet2d: 'UNet (2D)', twopath2d: 'TwoPathCNN (2D)',
                                                   highresnet3d: 'HighResNet (3D)', deepmedic3d: 'DeepMedic (3D)'};
export const NET_DIMS: Record<NetName, 2 | 3> = {unet2d: 2, twopath2d: 2, highresnet3d: 3, deepmedic3d: 3};
/** Every input side must be a multiple of this (two pools / dilation 4). */
export const SIDE_MULTIPLE = 4;

type Sym = TfNamespace.SymbolicTensor;

let dilatedClass: (new (cfg: DilatedArgs) => TfNamespace.layers.Layer) | undefined;

interface DilatedArgs {
  filters: number;
  rate: number;
  seed: number;
  name?: string;
}

/** The dilated 3D convolution layer class, made once per tfjs instance (it extends that instance's Layer). */
function dilatedConv3dClass(tf: Tf) {
  if (dilatedClass) return dilatedClass;
  class DilatedConv3D extends tf.layers.Layer {
    static className = 'SeglossDilatedConv3D';
    private readonly filters: number;
    private readonly rate: number;
    private readonly seed: number;
    private kernel!: TfNamespace.LayerVariable;
    private bias!: TfNamespace.LayerVariable;

    constructor(args: DilatedArgs) {
      super({name: args.name});
      this.filters = args.filters;
      this.rate = args.rate;
      this.seed = args.seed;
    }

    build(inputShape: TfNamespace.Shape | TfNamespace.Shape[]): void {
      const shape = inputShape as number[];
      const cin = shape[shape.length - 1];
      this.kernel = this.addWeight('kernel', [3, 3, 3, cin, this.filters], 'float32',
                                   tf.initializers.heNormal({seed: this.seed}));
      this.bias = this.addWeight('bias', [this.filters], 'float32', tf.initializers.zeros());
      this.built = true;
    }

    computeOutputShape(inputShape: TfNamespace.Shape | TfNamespace.Shape[]): TfNamespace.Shape {
      const shape = (inputShape as TfNamespace.Shape).slice();
      shape[shape.length - 1] = this.filters;
      return shape;
    }

    call(inputs: TfNamespace.Tensor | TfNamespace.Tensor[]): TfNamespace.Tensor {
      return tf.tidy(() => {
        const x = (Array.isArray(inputs) ? inputs[0] : inputs) as TfNamespace.Tensor5D;
        const k = this.kernel.read() as TfNamespace.Tensor5D;
        const r = this.rate;
        if (r === 1) return tf.add(tf.conv3d(x, k, 1, 'same'), this.bias.read());
        const [b, d, h, w, c] = x.shape;
        // [b, d/r, r, h/r, r, w/r, r, c] -> [r, r, r, b, d/r, h/r, w/r, c]: each phase is its own batch entry
        const s = tf.reshape(x, [b, d / r, r, h / r, r, w / r, r, c]);
        const t = tf.reshape(tf.transpose(s, [2, 4, 6, 0, 1, 3, 5, 7]), [r * r * r * b, d / r, h / r, w / r, c]);
        const y = tf.conv3d(t as TfNamespace.Tensor5D, k, 1, 'same');
        const f = this.filters;
        const u = tf.reshape(y, [r, r, r, b, d / r, h / r, w / r, f]);
        const v = tf.reshape(tf.transpose(u, [3, 4, 0, 5, 1, 6, 2, 7]), [b, d, h, w, f]);
        return tf.add(v, this.bias.read());
      });
    }

    getConfig(): TfNamespace.serialization.ConfigDict {
      return {...super.getConfig(), filters: this.filters, rate: this.rate, seed: this.seed};
    }
  }
  tf.serialization.registerClass(DilatedConv3D);
  dilatedClass = DilatedConv3D as unknown as new (cfg: DilatedArgs) => TfNamespace.layers.Layer;
  return dilatedClass;
}

/** A dilated 3D convolution layer (3^3 kernel, 'same' padding, no activation); exported for its test. */
export function dilatedConv3d(tf: Tf, args: DilatedArgs): TfNamespace.layers.Layer {
  const Dilated = dilatedConv3dClass(tf);
  return new Dilated(args);
}

export interface NetOptions {
  /** Input channels (modalities). */
  channels: number;
  /** Feature width of the first level (UNet and HighResNet double it per level / stage). */
  width: number;
  /** HighResNet: residual blocks per dilation stage (default 1). */
  blocks?: number;
  /** HighResNet: keep the width at every stage instead of doubling it. */
  constantWidth?: boolean;
  seed: number;
}

function unet2d(tf: Tf, o: NetOptions): TfNamespace.LayersModel {
  let seed = o.seed;
  const conv = (x: Sym, filters: number, kernel = 3, activation: 'relu' | 'linear' = 'relu') =>
    tf.layers.conv2d({filters, kernelSize: kernel, padding: 'same', activation,
                      kernelInitializer: tf.initializers.heNormal({seed: seed++}), biasInitializer: 'zeros'})
      .apply(x) as Sym;
  const input = tf.input({shape: [null, null, o.channels] as unknown as number[]});
  const w = o.width;
  const e1 = conv(conv(input, w), w);
  const e2 = conv(conv(tf.layers.maxPooling2d({poolSize: 2}).apply(e1) as Sym, 2 * w), 2 * w);
  const bottom = conv(conv(tf.layers.maxPooling2d({poolSize: 2}).apply(e2) as Sym, 4 * w), 4 * w);
  const up2 = tf.layers.upSampling2d({size: [2, 2]}).apply(bottom) as Sym;
  const d2 = conv(conv(tf.layers.concatenate().apply([up2, e2]) as Sym, 2 * w), 2 * w);
  const up1 = tf.layers.upSampling2d({size: [2, 2]}).apply(d2) as Sym;
  const d1 = conv(conv(tf.layers.concatenate().apply([up1, e1]) as Sym, w), w);
  const logits = conv(d1, 1, 1, 'linear');
  return tf.model({inputs: input, outputs: logits, name: 'unet2d'});
}

let batchNormClass: (new (cfg: {name?: string}) => TfNamespace.layers.Layer) | undefined;

/**
 * Batch normalisation over every axis but the channels, for 5D tensors:
 * tfjs-layers' batchNormalization stops at rank 4. Training normalises by
 * the batch's moments (biased variance) and moves the running ones by
 * momentum 0.9, so the running statistics that segment the held-out
 * volumes settle within tens of iterations (tfjs's default 0.99 would take
 * hundreds); inference uses the running ones. epsilon 1e-3, as tfjs-layers.
 */
function batchNormClassFor(tf: Tf) {
  if (batchNormClass) return batchNormClass;
  const MOMENTUM = 0.9, EPSILON = 1e-3;
  class BatchNorm5D extends tf.layers.Layer {
    static className = 'SeglossBatchNorm5D';
    private gamma!: TfNamespace.LayerVariable;
    private beta!: TfNamespace.LayerVariable;
    private movingMean!: TfNamespace.LayerVariable;
    private movingVariance!: TfNamespace.LayerVariable;

    build(inputShape: TfNamespace.Shape | TfNamespace.Shape[]): void {
      const shape = inputShape as number[];
      const c = [shape[shape.length - 1]];
      this.gamma = this.addWeight('gamma', c, 'float32', tf.initializers.ones());
      this.beta = this.addWeight('beta', c, 'float32', tf.initializers.zeros());
      this.movingMean = this.addWeight('moving_mean', c, 'float32', tf.initializers.zeros(), undefined, false);
      this.movingVariance = this.addWeight('moving_variance', c, 'float32', tf.initializers.ones(), undefined, false);
      this.built = true;
    }

    call(inputs: TfNamespace.Tensor | TfNamespace.Tensor[], kwargs: {training?: boolean}): TfNamespace.Tensor {
      return tf.tidy(() => {
        const x = (Array.isArray(inputs) ? inputs[0] : inputs) as TfNamespace.Tensor;
        const axes = Array.from({length: x.rank - 1}, (_, i) => i);
        let mean: TfNamespace.Tensor, variance: TfNamespace.Tensor;
        if (kwargs.training) {
          ({mean, variance} = tf.moments(x, axes));
          // the running statistics are state that no loss reads in training: tfjs-layers' own batch norm updates them so too
          const update = (moving: TfNamespace.LayerVariable, batch: TfNamespace.Tensor) =>
            moving.write(tf.add(tf.mul(moving.read(), MOMENTUM), tf.mul(batch, 1 - MOMENTUM)));
          update(this.movingMean, mean);
          update(this.movingVariance, variance);
        } else {
          mean = this.movingMean.read();
          variance = this.movingVariance.read();
        }
        const scale = tf.mul(tf.rsqrt(tf.add(variance, EPSILON)), this.gamma.read());
        return tf.add(tf.mul(tf.sub(x, mean), scale), this.beta.read());
      });
    }
  }
  tf.serialization.registerClass(BatchNorm5D);
  batchNormClass = BatchNorm5D as unknown as new (cfg: {name?: string}) => TfNamespace.layers.Layer;
  return batchNormClass;
}

/** A batch-normalisation layer for 5D tensors; exported for its test. */
export function batchNorm5d(tf: Tf): TfNamespace.layers.Layer {
  const BatchNorm5D = batchNormClassFor(tf);
  return new BatchNorm5D({});
}

function batchNorm(tf: Tf, x: Sym): Sym {
  return batchNorm5d(tf).apply(x) as Sym;
}

/**
 * HighResNet (Li et al. 2017, NiftyNet's HighRes3DNet): a 3^3 stem, then
 * three stages of residual blocks at dilation 1, 2 and 4 with widths w, 2w
 * and 4w (the paper: 16 / 32 / 64 and three blocks per stage), each block
 * pre-activated (batch norm, ReLU, 3^3 convolution, twice) around an
 * identity shortcut, or a 1^3 projection where the width changes; batch
 * norm and ReLU before the 1^3 output convolution.
 */
function highresnet3d(tf: Tf, o: NetOptions): TfNamespace.LayersModel {
  const Dilated = dilatedConv3dClass(tf);
  let seed = o.seed;
  const w = o.width;
  const blocks = o.blocks ?? 1;
  const input = tf.input({shape: [null, null, null, o.channels] as unknown as number[]});
  const relu = (x: Sym) => tf.layers.activation({activation: 'relu'}).apply(x) as Sym;
  const conv1 = (x: Sym, filters: number) =>
    tf.layers.conv3d({filters, kernelSize: 1, padding: 'same', useBias: false,
                      kernelInitializer: tf.initializers.heNormal({seed: seed++})}).apply(x) as Sym;
  let x = new Dilated({filters: w, rate: 1, seed: seed++}).apply(input) as Sym;
  let width = w;
  for (const [stage, rate] of [1, 2, 4].entries()) {
    const filters = o.constantWidth ? w : w * 2 ** stage;
    for (let b = 0; b < blocks; b++) {
      const a = new Dilated({filters, rate, seed: seed++}).apply(relu(batchNorm(tf, x))) as Sym;
      const c = new Dilated({filters, rate, seed: seed++}).apply(relu(batchNorm(tf, a))) as Sym;
      x = tf.layers.add().apply([filters === width ? x : conv1(x, filters), c]) as Sym;
      width = filters;
    }
  }
  const logits = tf.layers.conv3d({filters: 1, kernelSize: 1, padding: 'same', activation: 'linear',
                                   kernelInitializer: tf.initializers.glorotUniform({seed: seed++}),
                                   biasInitializer: 'zeros'}).apply(relu(batchNorm(tf, x))) as Sym;
  return tf.model({inputs: input, outputs: logits, name: 'highresnet3d'});
}

/**
 * TwoPathCNN (Havaei et al. 2017), fully convolutional with 'same' padding:
 * a local pathway (7^2 convolution, 4^2 max pool at stride 1, 3^2
 * convolution, 2^2 max pool at stride 1; width w) and a global pathway (one
 * 13^2 convolution, width 2w) side by side, concatenated, then one 21^2
 * convolution to the logit. The published net has widths 64 / 160 and
 * maxout units; here ReLU and the study's widths.
 */
function twopath2d(tf: Tf, o: NetOptions): TfNamespace.LayersModel {
  let seed = o.seed;
  const conv = (x: Sym, filters: number, kernel: number, activation: 'relu' | 'linear' = 'relu') =>
    tf.layers.conv2d({filters, kernelSize: kernel, padding: 'same', activation,
                      kernelInitializer: tf.initializers.heNormal({seed: seed++}), biasInitializer: 'zeros'})
      .apply(x) as Sym;
  const pool = (x: Sym, size: number) =>
    tf.layers.maxPooling2d({poolSize: size, strides: 1, padding: 'same'}).apply(x) as Sym;
  const input = tf.input({shape: [null, null, o.channels] as unknown as number[]});
  const local = pool(conv(pool(conv(input, o.width, 7), 4), o.width, 3), 2);
  const global = conv(input, 2 * o.width, 13);
  const both = tf.layers.concatenate().apply([local, global]) as Sym;
  const logits = conv(both, 1, 21, 'linear');
  return tf.model({inputs: input, outputs: logits, name: 'twopath2d'});
}

let upsampleClass: (new (cfg: {factor: number}) => TfNamespace.layers.Layer) | undefined;

/**
 * Nearest-neighbour 3D up-sampling by an integer factor (tfjs-layers has
 * only the 2D layer): one axis at a time, each a rank-4 broadcast multiply
 * by ones, so the gradient is a plain broadcast sum.
 */
function upsample3dClass(tf: Tf) {
  if (upsampleClass) return upsampleClass;
  class UpSampling3D extends tf.layers.Layer {
    static className = 'SeglossUpSampling3D';
    private readonly factor: number;

    constructor(args: {factor: number}) {
      super({});
      this.factor = args.factor;
    }

    computeOutputShape(inputShape: TfNamespace.Shape | TfNamespace.Shape[]): TfNamespace.Shape {
      const s = (inputShape as TfNamespace.Shape).slice();
      for (let a = 1; a <= 3; a++) s[a] = s[a] === null ? null : (s[a] as number) * this.factor;
      return s;
    }

    call(inputs: TfNamespace.Tensor | TfNamespace.Tensor[]): TfNamespace.Tensor {
      return tf.tidy(() => {
        let x = (Array.isArray(inputs) ? inputs[0] : inputs) as TfNamespace.Tensor;
        const f = this.factor;
        const ones = tf.ones([1, 1, f, 1]);
        for (let a = 1; a <= 3; a++) {
          const s = x.shape;
          const outer = s.slice(0, a).reduce((p, q) => p * q, 1);
          const inner = s.slice(a + 1).reduce((p, q) => p * q, 1);
          const y = tf.mul(tf.reshape(x, [outer, s[a], 1, inner]), ones);
          const t = s.slice();
          t[a] = s[a] * f;
          x = tf.reshape(y, t);
        }
        return x;
      });
    }

    getConfig(): TfNamespace.serialization.ConfigDict {
      return {...super.getConfig(), factor: this.factor};
    }
  }
  tf.serialization.registerClass(UpSampling3D);
  upsampleClass = UpSampling3D as unknown as new (cfg: {factor: number}) => TfNamespace.layers.Layer;
  return upsampleClass;
}

/** Nearest-neighbour 3D up-sampling; exported for its test. */
export function upsample3d(tf: Tf, factor: number): TfNamespace.layers.Layer {
  const Up = upsample3dClass(tf);
  return new Up({factor});
}

/**
 * DeepMedic (Kamnitsas et al. 2017), 'same' padding: a normal-resolution
 * pathway and a subsampled one (average pool by 2, the same stack, nearest
 * up-sampling by 2) of four 3^3 convolutions each (widths w, w, 2w, 2w),
 * concatenated, then a 1^3 "fully connected" layer of width 4w and the 1^3
 * logit. The published net has eight convolutions per pathway (30 - 50
 * wide), a subsampling factor of 3, 150-wide fully connected layers and
 * valid padding; factor 2 keeps the study's sides multiples of 4.
 */
function deepmedic3d(tf: Tf, o: NetOptions): TfNamespace.LayersModel {
  let seed = o.seed;
  const w = o.width;
  const conv = (x: Sym, filters: number, kernel: number, activation: 'relu' | 'linear' = 'relu') =>
    tf.layers.conv3d({filters, kernelSize: kernel, padding: 'same', activation,
                      kernelInitializer: tf.initializers.heNormal({seed: seed++}), biasInitializer: 'zeros'})
      .apply(x) as Sym;
  const stack = (x: Sym) => [w, w, 2 * w, 2 * w].reduce((y, f) => conv(y, f, 3), x);
  const input = tf.input({shape: [null, null, null, o.channels] as unknown as number[]});
  const normal = stack(input);
  const low = tf.layers.averagePooling3d({poolSize: 2, strides: 2, padding: 'valid'}).apply(input) as Sym;
  const subsampled = upsample3d(tf, 2).apply(stack(low)) as Sym;
  const both = tf.layers.concatenate().apply([normal, subsampled]) as Sym;
  const logits = conv(conv(both, 4 * w, 1), 1, 1, 'linear');
  return tf.model({inputs: input, outputs: logits, name: 'deepmedic3d'});
}

export function buildNet(tf: Tf, name: NetName, o: NetOptions): TfNamespace.LayersModel {
  switch (name) {
    case 'unet2d': return unet2d(tf, o);
    case 'twopath2d': return twopath2d(tf, o);
    case 'highresnet3d': return highresnet3d(tf, o);
    case 'deepmedic3d': return deepmedic3d(tf, o);
  }
}
