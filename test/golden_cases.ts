/**
 * Golden table: small hand-checkable cases with their expected loss, per-group
 * losses and gradient, written as a user would call the API (float32
 * predictions, typed-array targets).
 *
 * How the numbers were made: each case's loss was derived by hand from
 * docs/losses.md (the derivation is the comment above it), and every number was
 * then computed by a separate high-precision oracle (a small Python/mpmath
 * script written straight from docs/losses.md, 50 significant digits, run on the
 * float32-rounded inputs): the loss directly, the gradient by central
 * differences (step 1e-20) of gradScale times the reduced loss with the class
 * weights frozen at the unperturbed input (docs/losses.md: weights are constants).
 * The oracle shares no code with lib/reference or the native kernels.
 *
 * `tol` is an absolute tolerance on the loss, each per-group loss and each
 * gradient entry against a float64 implementation; golden.test.ts widens it
 * for the native float32 gradient (see there).
 */
import type {AnyLossArgs, LossName, WeightedCrossEntropyOptions} from '../lib/types';

/**
 * `AnyLossArgs` with `classWeights` restated: in lib/types.ts `AnyLossArgs`
 * intersects Dice's `ArrayLike<number>` with WCE's `'inverse-frequency' |
 * 'paper' | ArrayLike<number>`, which rejects `'paper'`.
 */
export type GoldenArgs = Omit<AnyLossArgs, 'classWeights'> & {classWeights?: WeightedCrossEntropyOptions['classWeights']};

export interface GoldenCase {
  name: string;
  loss: LossName;
  args: GoldenArgs;
  /** `loss` of the result ('none': the mean of the per-sample losses). */
  expectedLoss: number;
  /** One per sample, for reductions other than 'pooled'. */
  expectedLosses?: number[];
  /** d(loss)/d(prediction) times gradScale, as docs/losses.md section 3 (with 'none': gradScale[b] * d losses[b]/dx). */
  expectedGradient?: number[];
  tol: number;
}

export const goldenCases: GoldenCase[] = [
  {
    // G1 = 2, G0 = 6 -> w1 = 1/4, w0 = 1/36. I1 = 1.5, I0 = 4.8, S1 = 2.7 + 2 = 4.7,
    // S0 = 5.3 + 6 = 11.3. Num = 2 (1.5/4 + 4.8/36) = 1.016667, Den = 4.7/4 + 11.3/36 = 1.488889,
    // loss = 1 - Num/Den = 0.317164. Gradient, docs/losses.md closed form (N = 8, sum p r = 1.5,
    // sum (p + r) = 4.7): 2 [0.061728 (1.5 - 4.7 r) + 0.061728 (1 - 2 r)] / 1.488889^2
    // = -0.233905 (r = 1), +0.139229 (r = 0): the paper's -0.2339 / +0.1392.
    name: 'generalizedDice: paper two-class example, sNr = sDr = 0',
    loss: 'generalizedDice',
    args: {prediction: new Float32Array([0.9, 0.6, 0.3, 0.1, 0.2, 0.05, 0.4, 0.15]), target: new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]), shape: [1, 8, 1], smoothNumerator: 0, smoothDenominator: 0},
    expectedLoss: 0.31716418315009803,
    expectedGradient: [-0.23390510094827696, -0.23390510094827696, 0.1392292257916838, 0.1392292257916838, 0.1392292257916838, 0.1392292257916838, 0.1392292257916838, 0.1392292257916838],
    tol: 1e-9,
  },
  {
    // As above with sNr = sDr = 1e-5: Num = 1.016677, Den = 1.488899, loss = 0.317162.
    name: 'generalizedDice: paper two-class example, defaults',
    loss: 'generalizedDice',
    args: {prediction: new Float32Array([0.9, 0.6, 0.3, 0.1, 0.2, 0.05, 0.4, 0.15]), target: new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]), shape: [1, 8, 1]},
    expectedLoss: 0.3171620529572143,
    expectedGradient: [-0.23390321201732628, -0.23390321201732628, 0.13922860861340233, 0.13922860861340233, 0.13922860861340233, 0.13922860861340233, 0.13922860861340233, 0.13922860861340233],
    tol: 1e-9,
  },
  {
    // L = {0, 1}. d1 = (2 * 1.5 + 1e-5)/(4.7 + 1e-5) = 0.638299, d0 = (2 * 4.8 + 1e-5)/(11.3 + 1e-5)
    // = 0.849558, loss = 1 - (d0 + d1)/2 = 0.256072 (DL2 form: both classes averaged).
    name: 'dice: paper two-class example (DL2), defaults',
    loss: 'dice',
    args: {prediction: new Float32Array([0.9, 0.6, 0.3, 0.1, 0.2, 0.05, 0.4, 0.15]), target: new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]), shape: [1, 8, 1]},
    expectedLoss: 0.25607185486400086,
    expectedGradient: [-0.18245255130491586, -0.18245255130491586, 0.1188084492681319, 0.1188084492681319, 0.1188084492681319, 0.1188084492681319, 0.1188084492681319, 0.1188084492681319],
    tol: 1e-9,
  },
  {
    // L = {1} (default includeBackground false), G1 = 2, N - G1 = 6.
    // sens = .1^2 + .4^2 = 0.17, spec = .3^2 + .1^2 + .2^2 + .05^2 + .4^2 + .15^2 = 0.325;
    // loss = 0.05 * 0.17/2.00001 + 0.95 * 0.325/6.00001 = 0.00425 + 0.051458 = 0.055708.
    // dL/dp = -2 (.05)(1 - p)/2.00001 on fg, 2 (.95) p/6.00001 on bg.
    name: 'sensitivitySpecificity: paper two-class example, defaults',
    loss: 'sensitivitySpecificity',
    args: {prediction: new Float32Array([0.9, 0.6, 0.3, 0.1, 0.2, 0.05, 0.4, 0.15]), target: new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]), shape: [1, 8, 1]},
    expectedLoss: 0.05570822838039787,
    expectedGradient: [-0.0049999761922119345, -0.019999898808413064, 0.0949998454418851, 0.03166661436084617, 0.06333322872169234, 0.015833307180423084, 0.12666645744338467, 0.04749992272094255],
    tol: 1e-9,
  },
  {
    // w1 = (8 - 2)/2 = 3, w0 = 1. loss = -(1/8)[3 (log .9 + log .6) + sum_bg log(1 - p)] = 0.407297.
    // dL/dp = -(1/8) 3/p on fg (-0.416667, -0.625), +(1/8)/(1 - p) on bg.
    name: 'weightedCrossEntropy: paper two-class example, inverse-frequency',
    loss: 'weightedCrossEntropy',
    args: {prediction: new Float32Array([0.9, 0.6, 0.3, 0.1, 0.2, 0.05, 0.4, 0.15]), target: new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]), shape: [1, 8, 1]},
    expectedLoss: 0.4072969096548341,
    expectedGradient: [-0.4166666777045641, -0.6249999751647324, 0.17857143161248193, 0.1388888891188451, 0.1562500005820766, 0.1315789474716147, 0.20833333540293908, 0.147058824560634],
    tol: 1e-9,
  },
  {
    // w1 = (N - sum p)/sum p = (8 - 2.7)/2.7 = 1.962963 (from the float32 p), w0 = 1, held constant:
    // loss = -(1/8)[1.962963 (log .9 + log .6) + sum_bg log(1 - p)] = 0.327421; fg dL/dp = -(1/8) w1/p.
    name: "weightedCrossEntropy: paper two-class example, 'paper' weights",
    loss: 'weightedCrossEntropy',
    args: {prediction: new Float32Array([0.9, 0.6, 0.3, 0.1, 0.2, 0.05, 0.4, 0.15]), target: new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]), shape: [1, 8, 1], classWeights: 'paper'},
    expectedLoss: 0.3274209278793587,
    expectedGradient: [-0.2726337476495091, -0.4089505943905352, 0.17857143161248193, 0.1388888891188451, 0.1562500005820766, 0.1315789474716147, 0.20833333540293908, 0.147058824560634],
    tol: 1e-9,
  },
  {
    // Logits log(p/(1 - p)) of the paper's p (float32-rounded): same loss as the 'none' case up to
    // that rounding, 0.407297. dL/dz = -(1/8)(3 r (1 - p) - (1 - r) p): -0.0375, -0.15 on fg, p/8 on bg.
    name: 'weightedCrossEntropy: paper example as sigmoid logits, Float32 target',
    loss: 'weightedCrossEntropy',
    args: {prediction: new Float32Array([2.1972245773362196, 0.4054651081081642, -0.8472978603872036, -2.197224577336219, -1.3862943611198906, -2.9444389791664403, -0.4054651081081643, -1.7346010553881064]), target: new Float32Array([1, 1, 0, 0, 0, 0, 0, 0]), shape: [1, 8, 1], activation: 'sigmoid'},
    expectedLoss: 0.4072969113205224,
    expectedGradient: [-0.03749999866119911, -0.15000000106856, 0.03750000034430125, 0.012499999553733036, 0.02499999992381383, 0.0062500002662391, 0.05000000035618667, 0.018750000551040952],
    tol: 1e-9,
  },
  {
    // G = P = I = [1, 2, 1], w = [1, 1/4, 1]. Num = 2 (1 + 0.5 + 1) + 1e-5 = 5.00001 = Den
    // = (2 + 1 + 2) + 1e-5: loss 0. dL/dp = -w (2 r Den - Num)/Den^2 = -w (2 r - 1)/5.00001:
    // -w/5.00001 on the true class, +w/5.00001 elsewhere (0.2 and 0.05).
    name: 'generalizedDice: perfect prediction, C = 3',
    loss: 'generalizedDice',
    args: {prediction: new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0]), target: new Uint8Array([0, 1, 2, 1]), shape: [1, 4, 3]},
    expectedLoss: 0,
    expectedGradient: [-0.1999996000008, 0.0499999000002, 0.1999996000008, 0.1999996000008, -0.0499999000002, 0.1999996000008, 0.1999996000008, 0.0499999000002, -0.1999996000008, 0.1999996000008, -0.0499999000002, 0.1999996000008],
    tol: 1e-9,
  },
  {
    // d_l = (2 G_l + 1e-5)/(2 G_l + 1e-5) = 1: loss 0. dL/dp = -(1/3)(2 r - 1)/(2 G_l + 1e-5):
    // -1/(3 * 2.00001) = -0.166666 on a true class with G = 1, -0.083333 with G = 2.
    name: 'dice: perfect prediction, C = 3',
    loss: 'dice',
    args: {prediction: new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0]), target: new Uint8Array([0, 1, 2, 1]), shape: [1, 4, 3]},
    expectedLoss: 0,
    expectedGradient: [-0.16666583333749999, 0.08333312500052083, 0.16666583333749999, 0.16666583333749999, -0.08333312500052083, 0.16666583333749999, 0.16666583333749999, 0.08333312500052083, -0.16666583333749999, 0.16666583333749999, -0.08333312500052083, 0.16666583333749999],
    tol: 1e-9,
  },
  {
    // p = r everywhere, so every (r - p)^2 = 0: loss 0 and gradient 0.
    name: 'sensitivitySpecificity: perfect prediction, binary map',
    loss: 'sensitivitySpecificity',
    args: {prediction: new Float32Array([1, 0, 0, 1]), target: new Uint8Array([1, 0, 0, 1]), shape: [1, 2, 2, 1]},
    expectedLoss: 0,
    expectedGradient: [0, 0, 0, 0],
    tol: 1e-9,
  },
  {
    // log 1 = 0: loss 0. w = [1, (4 - 2)/2 = 1, (4 - 1)/1 = 3]; dL/dp = -(1/4) w_l r/p = -(1/4) w_l
    // on the true class (p = 1): -0.25, -0.25, -0.75, -0.25; 0 elsewhere (r = 0).
    name: 'weightedCrossEntropy: perfect prediction, C = 3',
    loss: 'weightedCrossEntropy',
    args: {prediction: new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0]), target: new Uint8Array([0, 1, 2, 1]), shape: [1, 4, 3]},
    expectedLoss: 0,
    expectedGradient: [-0.25, 0, 0, 0, -0.25, 0, 0, 0, -0.75, 0, -0.25, 0],
    tol: 1e-9,
  },
  {
    // G1 = 0 -> w1 = the largest finite weight = w0 = 1/4^2. I0 = 3, S0 = 3 + 4 = 7, S1 = 1.
    // Num = 2 * 3/16 + 1e-5 = 0.37501, Den = 8/16 + 1e-5 = 0.50001, loss = 0.249995.
    // Channel gradient g1 - g0 = w Num/Den^2 + w (2 Den - Num)/Den^2 = 2 w/Den = 0.249995.
    name: 'generalizedDice: all-background binary map (absent foreground takes w0)',
    loss: 'generalizedDice',
    args: {prediction: new Float32Array([0.1, 0.2, 0.3, 0.4]), target: new Uint8Array([0, 0, 0, 0]), shape: [1, 4, 1]},
    expectedLoss: 0.24999500568782168,
    expectedGradient: [0.249995000099998, 0.249995000099998, 0.249995000099998, 0.249995000099998],
    tol: 1e-9,
  },
  {
    // L = {1}: d1 = (0 + 1e-5)/(1 + 1e-5), loss = 1 - d1 = 0.99999. dL/dp = (2 I + sNr)/(S + sDr)^2
    // = 1e-5/1.00001^2 = 9.9998e-6.
    name: 'dice: all-background binary map, includeBackground false',
    loss: 'dice',
    args: {prediction: new Float32Array([0.1, 0.2, 0.3, 0.4]), target: new Uint8Array([0, 0, 0, 0]), shape: [1, 4, 1], includeBackground: false},
    expectedLoss: 0.9999900001002225,
    expectedGradient: [9.999799555978551e-06, 9.999799555978551e-06, 9.999799555978551e-06, 9.999799555978551e-06],
    tol: 1e-9,
  },
  {
    // L = {1}, G1 = 0: the sensitivity term is 0; spec = .01 + .04 + .09 + .16 = 0.3;
    // loss = 0.95 * 0.3/(4 + 1e-5) = 0.0712498, dL/dp = 2 (0.95) p/4.00001.
    name: 'sensitivitySpecificity: all-background binary map',
    loss: 'sensitivitySpecificity',
    args: {prediction: new Float32Array([0.1, 0.2, 0.3, 0.4]), target: new Uint8Array([0, 0, 0, 0]), shape: [1, 4, 1]},
    expectedLoss: 0.0712498250605606,
    expectedGradient: [0.04749988195810026, 0.09499976391620052, 0.14249964941331772, 0.18999952783240104],
    tol: 1e-9,
  },
  {
    // G1 = 0 -> w1 = 0, w0 = 1: loss = -(1/4) sum log(1 - p) = 0.299001, dL/dp = (1/4)/(1 - p).
    name: 'weightedCrossEntropy: all-background binary map (w1 = 0)',
    loss: 'weightedCrossEntropy',
    args: {prediction: new Float32Array([0.1, 0.2, 0.3, 0.4]), target: new Uint8Array([0, 0, 0, 0]), shape: [1, 4, 1]},
    expectedLoss: 0.29900116675543503,
    expectedGradient: [0.2777777782376902, 0.3125000011641532, 0.35714286322496386, 0.41666667080587816],
    tol: 1e-9,
  },
  {
    // L = {1}, G1 = 0: no finite weight, so w = 0; Den = sDr = 0 -> loss 0 and zero gradient.
    name: 'generalizedDice: all-background, includeBackground false, sNr = sDr = 0 (Den = 0)',
    loss: 'generalizedDice',
    args: {prediction: new Float32Array([0.1, 0.2, 0.3, 0.4]), target: new Uint8Array([0, 0, 0, 0]), shape: [1, 4, 1], includeBackground: false, smoothNumerator: 0, smoothDenominator: 0},
    expectedLoss: 0,
    expectedGradient: [0, 0, 0, 0],
    tol: 1e-9,
  },
  {
    // Softmax of the logits: P = [1.752747, 1.277474, 0.969779], I = [1.154825, 0.133414, 0].
    // G = [3, 1, 0] -> w = [1/9, 1, 1]: class 2 is absent and takes max(1/9, 1) = 1.
    // Num = 2 (1.154825/9 + 0.133414) + 1e-5 = 0.523467, Den = 4.752747/9 + 2.277474 + 0.969779 + 1e-5
    // = 3.775346, loss = 0.861346; gradient through the softmax chain rule.
    name: 'generalizedDice: absent class 2 takes the largest finite weight, softmax',
    loss: 'generalizedDice',
    args: {prediction: new Float32Array([2, 0.5, -1, 0.3, 1.5, 0, 1, -0.5, 0.2, -0.2, 0.4, 0.9]), target: new Uint8Array([0, 0, 1, 0]), shape: [1, 2, 2, 3], activation: 'softmax'},
    expectedLoss: 0.8613460634352995,
    expectedGradient: [-0.015412901379616154, 0.012601194772063964, 0.0028117066075521893, -0.014508358865269529, 0.011861663899702142, 0.0026466949655673875, 0.034410783169645624, -0.058643195426874184, 0.024232412257228556, -0.013010179958952128, 0.004911872134005845, 0.008098307824946282],
    tol: 1e-9,
  },
  {
    // G = [2, 1, 0] -> 'simple' w = [1/2, 1, 1] (class 2 absent: max(1/2, 1)). P = [1.3, 1.05, 0.65],
    // I = [1.1, 0.5, 0]. Num = 2 (0.55 + 0.5) + 1e-5 = 2.10001, Den = 3.3/2 + 2.05 + 0.65 + 1e-5
    // = 4.35001, loss = 0.517240.
    name: "generalizedDice: absent class, weighting 'simple', Uint16 target",
    loss: 'generalizedDice',
    args: {prediction: new Float32Array([0.6, 0.3, 0.1, 0.2, 0.5, 0.3, 0.5, 0.25, 0.25]), target: new Uint16Array([0, 1, 0]), shape: [1, 3, 3], weighting: 'simple'},
    expectedLoss: 0.5172401890712239,
    expectedGradient: [-0.1743950215698406, 0.1109790107675877, 0.1109790107675877, 0.05548950538379385, -0.3487900431396812, 0.1109790107675877, -0.1743950215698406, 0.1109790107675877, 0.1109790107675877],
    tol: 1e-9,
  },
  {
    // Per sample. Sample 0: G = [2, 1] -> w = [1/4, 1]; P = [1.428223, 1.571777], I = [1.380797, 0.952574];
    // Num = 2.595557, Den = 3.428843, loss0 = 0.243023. Sample 1: G = [1, 2] -> w = [1, 1/4]; loss1 = 0.531928.
    // loss = mean = 0.387475. Gradient block b is gradScale[b] * d loss_b/dx (1 and -0.5), not divided by B.
    name: "generalizedDice: reduction 'none', per-sample gradScale, softmax",
    loss: 'generalizedDice',
    args: {prediction: new Float32Array([1, -1, 0.5, 0.5, -2, 1, 0.3, 0.1, 0, 2, -1, -0.5]), target: new Uint8Array([0, 0, 1, 1, 1, 0]), shape: [2, 3, 2], activation: 'softmax', reduction: 'none', gradScale: new Float32Array([1, -0.5])},
    expectedLoss: 0.38747510106750066,
    expectedLosses: [0.24302251396534919, 0.5319276881696522],
    expectedGradient: [-0.03269474132356066, 0.03269474132356066, -0.07784937812607726, 0.07784937812607726, 0.018870807953386207, -0.018870807953386207, -0.034704113642797886, 0.034704113642797886, -0.014721072142663728, 0.014721072142663728, 0.06384112512355994, -0.06384112512355994],
    tol: 1e-9,
  },
  {
    // Per sample, S_l = sum p^2 + sum r^2, d_l = (I + sNr)/(S - I + sDr), c = [0.5, 1, 2], sum c = 3.5.
    // Sample 0: d0 = .70001/.80001 = 0.875, d1 = .60001/.80001 = 0.75, d2 (absent, S = 0.1) = 1e-5/0.10001;
    // loss0 = 1 - (0.4375 + 0.75 + 0.0002)/3.5 = 0.660656. Sample 1: loss1 = 0.411865. loss = mean;
    // gradient = gradScale 2 / B 2 times the sum of the per-sample gradients.
    name: "dice: reduction 'mean', jaccard, squared, classWeights",
    loss: 'dice',
    args: {prediction: new Float32Array([0.7, 0.2, 0.1, 0.1, 0.6, 0.3, 0.2, 0.2, 0.6, 0.5, 0.4, 0.1]), target: new Uint8Array([0, 1, 2, 1]), shape: [2, 2, 3], reduction: 'mean', jaccard: true, squared: true, classWeights: [0.5, 1, 2], gradScale: 2},
    expectedLoss: 0.5362607502688573,
    expectedLosses: [0.6606560270295593, 0.41186547350815533],
    expectedGradient: [-0.116069871181292, 0.10714196854868263, 0.00011426284524883156, 0.031249665464782233, -0.30356739400370114, 0.00034278854425973994, 6.794163714825413e-06, 0.07142857354612171, -0.6264521409429107, 1.6985409033961216e-05, -0.39285267702508486, 0.11565321842076279],
    tol: 1e-9,
  },
  {
    // Softmax; voxel 2 (sample 1, first voxel) masked. Sample 0: N = 2, G = [1, 0.5, 0.5];
    // sample 1: N = 1, G = [0, 0, 1]. Each sample: sum over l in {0, 1, 2} of SS_l
    // (classReduction 'sum'); loss = losses[0] + losses[1] = 0.318697 + 0.178627. Masked voxel: zero gradient.
    name: "sensitivitySpecificity: reduction 'sum', NiftyNet style (includeBackground true, classReduction 'sum'), masked, dense",
    loss: 'sensitivitySpecificity',
    args: {prediction: new Float32Array([0.5, -0.5, 1, 0, 0, 2, 1, 1, -1, 0.2, -0.3, 0.4]), target: new Float32Array([1, 0, 0, 0, 0.5, 0.5, 0, 1, 0, 0, 0, 1]), shape: [2, 2, 3], mask: new Uint8Array([1, 1, 0, 1]), activation: 'softmax', reduction: 'sum', includeBackground: true, classReduction: 'sum'},
    expectedLoss: 0.49732448715254374,
    expectedLosses: [0.3186973562990181, 0.17862713085352563],
    expectedGradient: [-0.14648882400932203, -0.02689982622234699, 0.17338865023166902, 0.004890485435983854, -0.04739595652152155, 0.0425054710855377, 0, 0, 0, 0.13133849663960223, 0.022961933486871127, -0.15430043012647338],
    tol: 1e-9,
  },
  {
    // Sample 0 keeps voxels 0 (class 0) and 2 (class 2): N = 2, G = [1, 0, 1] -> w = [1, 0, 1];
    // loss0 = -(1/2)(log .7 + log .6) = 0.433750. Sample 1: N = 3, G = [1, 1, 1] -> w = [1, 2, 2];
    // loss1 = -(1/3)(2 log .4 + 2 log .4 + log .25) = 1.683819. loss = mean = 1.058785.
    // dL/dp = -(1/B)(1/N) w r/p, e.g. -(1/2)(1/2)/.7 = -0.357143; the ignored voxel gets 0.
    name: "weightedCrossEntropy: ignoreIndex 255, C = 3, reduction 'mean'",
    loss: 'weightedCrossEntropy',
    args: {prediction: new Float32Array([0.7, 0.2, 0.1, 0.1, 0.6, 0.3, 0.2, 0.2, 0.6, 0.5, 0.4, 0.1, 0.3, 0.3, 0.4, 0.25, 0.5, 0.25]), target: new Uint8Array([0, 255, 2, 1, 2, 0]), shape: [2, 3, 3], ignoreIndex: 255, reduction: 'mean'},
    expectedLoss: 1.0587846744181926,
    expectedLosses: [0.4337502724990963, 1.683819076337289],
    expectedGradient: [-0.35714286322496386, 0, 0, 0, 0, 0, 0, 0, -0.41666665010982157, 0, -0.8333333209156992, 0, 0, 0, -0.8333333209156992, -0.6666666666666666, 0, 0],
    tol: 1e-9,
  },
  {
    // Voxel 2 is ignored (-1). Kept r1 = [1, .25, 0, .75], p1 = [.8, .3, .1, .5]: G = [2, 2] -> w = [1/4, 1/4];
    // I1 = .8 + .075 + .375 = 1.25, I0 = .525 + .9 + .125 = 1.55; Num = 2 (2.8)/4 + 1e-5 = 1.40001,
    // Den = (4.3 + 3.7)/4 + 1e-5 = 2.00001, loss = 0.299998.
    name: 'generalizedDice: binary Float32 soft target with ignoreIndex -1',
    loss: 'generalizedDice',
    args: {prediction: new Float32Array([0.8, 0.3, 0.6, 0.1, 0.5]), target: new Float32Array([1, 0.25, -1, 0, 0.75]), shape: [1, 5, 1], ignoreIndex: -1},
    expectedLoss: 0.2999984988899185,
    expectedGradient: [-0.24999875000624996, 0.12499937500312498, 0, 0.24999875000624996, -0.12499937500312498],
    tol: 1e-9,
  },
  {
    // Voxel 2 ignored (-1), voxel 5 masked. Kept p1 = sigmoid([2, -1, -.5, 1.5]) = [.880797, .268941,
    // .377541, .817574], r1 = [1, 0, 0, 1]: d1 = (2 * 1.698372 + 1e-5)/(4.344854 + 1e-5) = 0.781785,
    // d0 = (2 * 1.353518 + 1e-5)/(3.655146 + 1e-5) = 0.740609; loss = 1 - (d0 + d1)/2 = 0.238803.
    // Gradient times gradScale 0.5.
    name: 'dice: Int32 target with ignoreIndex -1 and a mask, sigmoid binary map',
    loss: 'dice',
    args: {prediction: new Float32Array([2, -1, 0.5, -0.5, 1.5, -2]), target: new Int32Array([1, 0, -1, 0, 1, 1]), shape: [1, 6, 1], mask: new Uint8Array([1, 1, 1, 1, 1, 0]), activation: 'sigmoid', ignoreIndex: -1, gradScale: 0.5},
    expectedLoss: 0.23880198857490198,
    expectedGradient: [-0.012677999775311057, 0.025779998917979028, 0, 0.030813976274965696, -0.018009468660101315, 0],
    tol: 1e-9,
  },
  {
    // Voxel 1 masked; L = {1, 2}; kept voxels 0, 2, 3 with classes 0, 2, 2, N = 3.
    // SS1 = 0.7 * (.2^2 + .2^2 + .4^2)/(3 + 1e-5) = 0.056 (G1 = 0); SS2 = 0.3 (.4^2 + .9^2)/(2 + 1e-5)
    // + 0.7 * .1^2/(1 + 1e-5) = 0.1525; loss = (SS1 + SS2)/2 = 0.104250.
    name: 'sensitivitySpecificity: mask, C = 3 none, lambda 0.3',
    loss: 'sensitivitySpecificity',
    args: {prediction: new Float32Array([0.7, 0.2, 0.1, 0.1, 0.6, 0.3, 0.2, 0.2, 0.6, 0.5, 0.4, 0.1]), target: new Uint8Array([0, 1, 2, 2]), shape: [1, 4, 3], mask: new Uint8Array([1, 0, 1, 1]), lambda: 0.3},
    expectedLoss: 0.1042495072262469,
    expectedGradient: [0, 0.04666651180701483, 0.06999930105007078, 0, 0, 0, 0, 0.04666651180701483, -0.05999969642523918, 0, 0.09333302361402966, -0.13499932477985868],
    tol: 1e-9,
  },
  {
    // Multi-label: each channel its own binary map. Sample 0: N = 2, G = [2, 1] -> w = [(2-2)/2 = 0, 1];
    // loss0 = -(1/2)[log(1 - sigmoid(-1)) + log sigmoid(2)] = 0.220095. Sample 1: G = [0, 1] -> w = [0, 1];
    // loss1 = 0.926051. dL/dz = -(1/N)(w r (1 - p) - (1 - r) p), not divided by B ('none').
    name: "weightedCrossEntropy: multi-label sigmoid, dense target, reduction 'none'",
    loss: 'weightedCrossEntropy',
    args: {prediction: new Float32Array([1, -1, 0.5, 2, -1.5, 0.3, 0, -0.7]), target: new Float32Array([1, 0, 1, 1, 0, 1, 0, 0]), shape: [2, 2, 2], activation: 'sigmoid', reduction: 'none'},
    expectedLoss: 0.5730728623350869,
    expectedLosses: [0.22009484928059767, 0.9260508753895761],
    expectedGradient: [0, 0.13447071068499755, 0, -0.05960146101105878, 0.09121276190317817, -0.21277874013708542, 0.25, 0.16590611523742865],
    tol: 1e-9,
  },
  {
    // L = {1, 2}, w = [3, 0.5, 2] (class 0's weight unused). loss = -(1/3)[0.5 log softmax(z_1)_1
    // + 2 log softmax(z_2)_2] = 1.249901. Voxel 0 (class 0) has sum_{l in L} w r = 0: zero gradient.
    name: 'weightedCrossEntropy: softmax, array weights, includeBackground false',
    loss: 'weightedCrossEntropy',
    args: {prediction: new Float32Array([1, 0, -1, 0.5, 0.5, 2, -1, 1, 0]), target: new Uint8Array([0, 1, 2]), shape: [1, 3, 3], activation: 'softmax', classWeights: [3, 0.5, 2], includeBackground: false},
    expectedLoss: 1.2499008321964729,
    expectedGradient: [0, 0, 0, 0.0257134621636477, -0.14095320450301896, 0.11523974233937126, 0.06002038211358697, 0.44349397051654793, -0.5035143526301349],
    tol: 1e-9,
  },
  {
    // Per sample, floor 1, no smoothing. Sample 0: G = [1, 1, 0] -> w = [1, 1, 1]; S = [1.9, 1.85, 0.25 -> 1];
    // Num = 2 (.8 + .7) = 3, Den = 1.9 + 1.85 + 1 = 4.75, loss0 = 0.368421. Sample 1: G = [1, 0, 1];
    // S = [1.9, 0.6 -> 1, 1.5]; Num = 2 (.6 + .4) = 2, Den = 4.4, loss1 = 0.545455. A class below the
    // floor has no Num term: dL/dp = -2 w r/Den, 0 where r = 0.
    name: "generalizedDice: NiftyNet setting (sNr = sDr = 0, floor 1, reduction 'mean')",
    loss: 'generalizedDice',
    args: {prediction: new Float32Array([0.8, 0.15, 0.05, 0.1, 0.7, 0.2, 0.6, 0.3, 0.1, 0.3, 0.3, 0.4]), target: new Uint8Array([0, 1, 0, 2]), shape: [2, 2, 3], reduction: 'mean', smoothNumerator: 0, smoothDenominator: 0, denominatorFloor: 1},
    expectedLoss: 0.456937794997232,
    expectedLosses: [0.36842105362223787, 0.5454545363722262],
    expectedGradient: [-0.14404432120798003, 0.06648199425127402, 0, 0.06648199425127402, -0.14404432120798003, 0, -0.17561983195386108, 0, 0.05165289308677078, 0.05165289308677078, 0, -0.17561983195386108],
    tol: 1e-9,
  },
];
