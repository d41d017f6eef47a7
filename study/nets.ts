/**
 * The two networks of the study, in tfjs-layers, both fully convolutional
 * ('same' padding, so the effective patch is the input patch) and ending in
 * one logit channel per voxel (the losses fuse the sigmoid):
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

export type NetName = 'unet2d' | 'highresnet3d';
export const NET_NAMES: NetName[] = ['unet2d', 'highresnet3d'];
export const NET_LABEL: Record<NetName, string> = {unet2d: 'UNet (2D)', highresnet3d: 'HighResNet (3D)'};
export const NET_DIMS: Record<NetName, 2 | 3> = {unet2d: 2, highresnet3d: 3};
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

export function buildNet(tf: Tf, name: NetName, o: NetOptions): TfNamespace.LayersModel {
  return name === 'unet2d' ? unet2d(tf, o) : highresnet3d(tf, o);
}
