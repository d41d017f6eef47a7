/**
 * The study's statistics (study/stats.ts, study/report.ts), on made-up
 * numbers: median and range over seeds, the convergence test on training
 * curves, the choice of the held-out configuration by training DSC, the
 * box plot, the isolines and the PNG writer. No tensorflow.js needed.
 */
import * as zlib from 'zlib';

import {mulberry32} from '../lib/reference/random';
import {bilinear, isolines} from '../study/contour';
import {crc32, RasterDraw} from '../study/draw';
import {PRESETS} from '../study/presets';
import type {Preset} from '../study/presets';
import {cellOf, formatCell, isolineFigure, lossSummaries, NOT_CONVERGED, trainingTable, tukeyBox} from '../study/report';
import type {ConfigResult} from '../study/run';
import {chooseByTraining, convergence, spread, trend} from '../study/stats';

const noise = (seed: number, sd: number) => {
  const rand = mulberry32(seed);
  return () => sd * Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
};

describe('median and range over seeds', () => {
  it('spread gives median, min, max and n, skipping non-finite values', () => {
    expect(spread([0.3, 0.1, 0.2])).toEqual({median: 0.2, min: 0.1, max: 0.3, n: 3});
    expect(spread([0.4, 0.1])).toEqual({median: 0.25, min: 0.1, max: 0.4, n: 2});
    expect(spread([0.5, NaN])).toEqual({median: 0.5, min: 0.5, max: 0.5, n: 1});
    const e = spread([]);
    expect(e.n).toBe(0);
    expect(e.median).toBeNaN();
  });
});

describe('convergence from the slope over the last 2K iterations', () => {
  const K = 50;
  const curve = (n: number, f: (i: number) => number, sd: number, seed: number) => {
    const e = noise(seed, sd);
    return Array.from({length: n}, (_, i) => f(i) + e());
  };

  it('trend fits the least-squares line: slope, change over the window, t', () => {
    const t = trend(Array.from({length: 100}, (_, i) => 2 + 0.01 * i), K);
    expect(t.slope).toBeCloseTo(0.01, 12);
    expect(t.change).toBeCloseTo(0.49, 10);
    expect(t.t).toBeGreaterThan(1e6);                                     // an exact line: no residual
    expect(trend([1, 1, 1, 1], K)).toEqual({slope: 0, change: 0, t: 0});
    expect(trend([0.1, null, 0.3, 0.4], 4).slope).toBeCloseTo(0.1, 12);   // a null loss is left out
  });

  it('a DSC still rising at the end has not converged; one on a plateau has (over 50 noisy runs each)', () => {
    const flatLoss = Array.from({length: 250}, () => 0.5);
    let rising = 0, plateau = 0;
    for (let s = 0; s < 50; s++) {
      // +0.1 over the last 100 iterations, per-batch noise 0.05
      if (!convergence(curve(250, (i) => 0.001 * i, 0.05, 10 + s), flatLoss, K).converged) rising++;
      if (!convergence(curve(250, (i) => 0.8 * (1 - Math.exp(-i / 30)), 0.05, 500 + s), flatLoss, K).converged) plateau++;
    }
    expect(rising).toBeGreaterThanOrEqual(45);
    expect(plateau).toBeLessThanOrEqual(5);
  });

  it('a loss still falling marks a run at DSC ~0 as not started, not failed; a flat one at 0 has failed', () => {
    const zero = Array.from({length: 250}, () => 0);
    const falling = curve(250, (i) => 1 - 0.0008 * i, 0.01, 3);          // -8% of its start over the last 100
    const c = convergence(zero, falling, K);
    expect(c.converged).toBe(false);
    expect(c.lossChange).toBeCloseTo((-0.0008 * 99) / (1 - 0.0008 * 24.5), 2);   // over the last 2K, per start level
    const collapsed = curve(250, (i) => 0.05 + 0.9 * Math.exp(-i / 10), 0.002, 4);
    expect(convergence(zero, collapsed, K).converged).toBe(true);
  });

  it('a window too short to test never counts as converged', () => {
    expect(convergence([0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], 3).converged).toBe(false);
    expect(convergence(Array(20).fill(0), Array(20).fill(1), 10).converged).toBe(true);
  });

  it('noise alone rarely reads as progress (under 10% of 200 flat noisy runs)', () => {
    // two-sided on the DSC and one-sided on the loss at 2 standard errors: about 7% expected
    let flagged = 0;
    for (let s = 0; s < 200; s++) {
      const d = curve(250, () => 0.5, 0.1, 100 + s);
      const l = curve(250, () => 0.4, 0.1, 1000 + s);
      if (!convergence(d, l, K).converged) flagged++;
    }
    expect(flagged).toBeLessThan(20);
  });
});

describe('the held-out configuration is chosen by training DSC', () => {
  it('chooseByTraining takes the highest training DSC, first on ties, skipping NaN', () => {
    expect(chooseByTraining([0.2, 0.7, 0.5])).toBe(1);
    expect(chooseByTraining([0.7, 0.7])).toBe(0);
    expect(chooseByTraining([NaN, 0.1])).toBe(1);
    expect(chooseByTraining([])).toBe(-1);
  });

  /** A made-up result: one seed's run of one configuration. */
  const result = (loss: 'WCE' | 'GDLv', lr: number, patch: 'S' | 'L', seed: number, train: number, test: number[],
                  converged = true): ConfigResult => ({
    id: `x${loss}${lr}${patch}${seed}`, fingerprint: '', net: 'unet2d', loss, seed, lossOptions: {}, lr, patch,
    patchSize: [8, 8], batch: 1, iterations: 10, lastK: 5, backend: 'test', lossCurve: [], dscCurve: [],
    dscMedian: train, dscQ1: train, dscQ3: train, dscIQR: 0.01, converged, dscChange: 0, lossChange: 0,
    imbalanceMedian: 0.1, imbalanceMin: 0.1, imbalanceMax: 0.1, testDsc: test,
    testDscMedian: spread(test).median, testDscPooled: 0, seconds: 0,
  });
  const preset: Preset = {...PRESETS.tiny, nets: ['unet2d'], losses: ['WCE', 'GDLv'], lrs: [1e-3, 1e-4], patches: ['S', 'L'],
                          seeds: 3};
  const rs: ConfigResult[] = [];
  for (const seed of [1, 2, 3]) {
    // WCE: S 1e-3 trains best, L 1e-4 generalises best; the choice must not look at the held-out numbers
    rs.push(result('WCE', 1e-3, 'S', seed, [0, 0.75, 0.8, 0.85][seed], [0.3, 0.4, 0.5]));
    rs.push(result('WCE', 1e-4, 'L', seed, 0.5, [0.9, 0.9, 0.9]));
    rs.push(result('WCE', 1e-3, 'L', seed, 0.05, [0, 0, 0]));                       // converged at 0: a failure
    rs.push(result('WCE', 1e-4, 'S', seed, 0.03, [0, 0, 0], seed === 1));          // 2 of 3 still training
    rs.push(result('GDLv', 1e-3, 'S', seed, 0.8, [0.6, 0.7, [0, 0.81, 0.82, 0.83][seed]]));
  }

  it('lossSummaries reports the held-out DSC of the best-training configuration, not the best held-out one', () => {
    const [wce, gdl] = lossSummaries(rs, preset);
    expect(wce.chosen).toBe('S 1e-3');
    expect(wce.chosenTrain).toEqual({median: 0.8, min: 0.75, max: 0.85, n: 3});
    expect(wce.chosenTest.median).toBe(0.4);                                      // not L 1e-4's 0.9
    expect(wce.chosenVolumes).toEqual([0.3, 0.4, 0.5]);
    expect(wce.collapsed).toBe(1);                                                 // L 1e-3 only
    expect(wce.notConverged).toBe(1);                                              // S 1e-4 is not a failure
    expect(gdl.chosen).toBe('S 1e-3');
    expect(gdl.configs).toBe(1);
    expect(gdl.chosenVolumes).toEqual([0.6, 0.7, 0.82]);
  });

  it('table cells show the median over seeds with the range, and mark cells that had not converged', () => {
    expect(formatCell(cellOf(rs, 'unet2d', 'WCE', 1e-3, 'S')!, 'train')).toBe('0.80 [0.75, 0.85]');
    expect(formatCell(cellOf(rs, 'unet2d', 'WCE', 1e-4, 'S')!, 'train')).toBe(`0.03 [0.03, 0.03] ${NOT_CONVERGED}`);
    expect(formatCell(cellOf(rs, 'unet2d', 'WCE', 1e-4, 'L')!, 'test')).toBe('0.90 [0.90, 0.90]');
    const one = [result('GDLv', 1e-3, 'S', 1, 0.5, [0.2], false)];
    expect(formatCell(cellOf(one, 'unet2d', 'GDLv', 1e-3, 'S')!, 'train')).toBe(`0.50 (0.01) ${NOT_CONVERGED}`);
    const table = trainingTable(rs, preset, 'unet2d');
    expect(table.split('\n')[0]).toBe('| Patch | Side | Imbalance: Table 1 / here | LR | WCE (reference weights) | GDLv |');
    expect(table).toContain(`| S | 8x8 | 52.0% / 10.0% | 1e-4 | 0.03 [0.03, 0.03] ${NOT_CONVERGED} | - |`);
  });

  it('the isoline figure draws lines where the 2 x 2 grid crosses a level, and every node', () => {
    const svg = isolineFigure(rs, preset, 'unet2d');
    // WCE's grid: 1e-3 row 0.80 (S), 0.05 (L); 1e-4 row 0.03 (S), 0.50 (L): it crosses 0.1 .. 0.7, and 0.8
    // as far as the rounding of its top node goes; GDLv has one node, no square
    const paths = (svg.match(/<path /g) ?? []).length;
    expect(paths >= 7 && paths <= 8).toBe(true);
    expect((svg.match(/<circle /g) ?? []).length).toBe(4 + 1);         // WCE's 4 nodes, GDLv's one
    expect(svg).toContain(`>0.03${NOT_CONVERGED}</text>`);
  });
});

describe('held-out box plot', () => {
  it("tukeyBox: quartiles, whiskers at the farthest points within 1.5 IQR, the rest outliers", () => {
    const b = tukeyBox([0.5, 0.6, 0.62, 0.64, 0.66, 0.7, 0.0]);
    expect(b.median).toBeCloseTo(0.62, 12);
    expect(b.q1).toBeCloseTo(0.55, 12);
    expect(b.q3).toBeCloseTo(0.65, 12);
    expect(b.lo).toBe(0.5);
    expect(b.hi).toBe(0.7);
    expect(b.outliers).toEqual([0]);
  });
});

describe('isolines (Figs. 1 and 2)', () => {
  it('bilinear interpolation meets the grid values and averages at a square centre', () => {
    const v = [[0, 1, 2], [1, 2, 3], [4, 5, 9]];
    expect(bilinear(v, 0, 0)).toBe(0);
    expect(bilinear(v, 2, 2)).toBe(9);
    expect(bilinear(v, 1.5, 1.5)).toBeCloseTo((2 + 3 + 5 + 9) / 4, 12);
    expect(bilinear([[0, NaN], [0, 0]], 0.5, 0.5)).toBeNaN();
  });

  it('traces a straight isoline of a linear field where it belongs', () => {
    const v = [[0, 0.5, 1], [0, 0.5, 1], [0, 0.5, 1]];                // value = column / 2
    const segs = isolines(v, 0.3, 8);
    expect(segs.length).toBeGreaterThan(0);
    for (const [[, c1], [, c2]] of segs) {
      expect(c1).toBeCloseTo(0.6, 9);
      expect(c2).toBeCloseTo(0.6, 9);
    }
    const length = segs.reduce((s, [[r1], [r2]]) => s + Math.abs(r2 - r1), 0);
    expect(length).toBeCloseTo(2, 9);                                  // the whole height of the grid
    expect(isolines(v, 1.5, 8)).toEqual([]);                           // a level the field never reaches
    expect(isolines([[0, 1]], 0.5, 8)).toEqual([]);                    // one row: no squares
  });

  it('splits a saddle by its centre value and skips squares with a hole', () => {
    expect(isolines([[1, 0], [0, 1]], 0.5, 1)).toHaveLength(2);
    // centre 0.5 >= 0.4: the high corners (top-left, bottom-right) connect, the low ones are cut off
    const [a, b] = isolines([[1, 0], [0, 1]], 0.4, 1);
    expect(a).toEqual([[0, 0.6], [0.4, 1]]);                           // around top-right
    expect(b).toEqual([[1, 0.4], [0.6, 0]]);                           // around bottom-left
    expect(isolines([[0, 1, NaN], [0, 1, 1]], 0.5, 4).every(([[, c1], [, c2]]) => c1 <= 1 && c2 <= 1)).toBe(true);
  });
});

describe('PNG output (draw.ts)', () => {
  it('crc32 gives the standard check value', () => {
    expect(crc32(Buffer.from('123456789', 'latin1'))).toBe(0xcbf43926);
  });

  it('writes a valid RGB PNG whose pixels decode back, at twice the SVG size', () => {
    const d = new RasterDraw(20, 10, 2);
    d.rect(0, 0, 5, 5, 'rgb(10,20,30)');
    d.text(8, 9, 'S1', {colour: '#f00'});
    const png = d.png();
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const chunks: {type: string; data: Buffer}[] = [];
    for (let o = 8; o < png.length;) {
      const n = png.readUInt32BE(o);
      const type = png.toString('latin1', o + 4, o + 8);
      expect(png.readUInt32BE(o + 8 + n)).toBe(crc32(png.subarray(o + 4, o + 8 + n)));
      chunks.push({type, data: png.subarray(o + 8, o + 8 + n)});
      o += 12 + n;
    }
    expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    expect([chunks[0].data.readUInt32BE(0), chunks[0].data.readUInt32BE(4), chunks[0].data[8], chunks[0].data[9]]).toEqual([40, 20, 8, 2]);
    const raw = zlib.inflateSync(chunks[1].data);
    expect(raw.length).toBe(20 * (40 * 3 + 1));
    const px = (x: number, y: number) => Array.from(raw.subarray(y * 121 + 1 + 3 * x, y * 121 + 4 + 3 * x));
    expect(px(3, 3)).toEqual([10, 20, 30]);                            // inside the rectangle (0..10 px)
    expect(px(12, 3)).toEqual([255, 255, 255]);
    let red = 0;
    for (let y = 0; y < 20; y++) for (let x = 16; x < 40; x++) if (px(x, y).join() === '255,0,0') red++;
    expect(red).toBeGreaterThan(20);                                   // 'S' and '1' drawn in 2 x 2 dots
    expect(() => new RasterDraw(1, 1).rect(0, 0, 1, 1, 'teal')).toThrow('Expected a colour as rgb(r,g,b), #rgb, #rrggbb');
  });
});
