/**
 * Study outputs: Markdown tables in the paper's format (Tables 2 and 3: DSC
 * median (IQR) over the last K iterations per patch size x learning rate x
 * loss, here with each patch size's measured imbalance), held-out DSC,
 * hand-written SVG figures (the paper's Fig. 1 / 2 as a heat map of DSC over
 * learning rate x patch size per loss; training curves), results.json with
 * every number, and summary.md.
 */
import * as fs from 'fs';
import * as path from 'path';

import {NET_LABEL, NetName} from './nets';
import {lossLabel, LossKey, lossSettingsNote, PatchKey, Preset, presetLabel, TABLE1_SHARE} from './presets';
import {CodeVersion, ConfigResult, lrLabel} from './run';
import {isolines} from './contour';
import {RasterDraw, SvgDraw} from './draw';
import {chooseByTraining, CONVERGENCE, quantile, Spread, spread} from './stats';

export interface ReportMeta {
  preset: Preset;
  /** The code that ran (run.ts codeVersion). */
  version: CodeVersion;
  backendNote: string;
  backend: string;
  seed: number;
  data: Record<string, string>;
  /** Wall time of this invocation (the resumed part only, when resuming). */
  seconds: number;
  ran: number;
  skipped: number;
}

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
export const pct = (x: number) => {
  if (!Number.isFinite(x)) return 'n/a';
  const p = 100 * x;
  return p >= 10 ? `${p.toFixed(1)}%` : p >= 1 ? `${p.toFixed(2)}%` : `${p.toFixed(3)}%`;
};

/** Every seed's run of one configuration. */
function runsOf(rs: ConfigResult[], net: NetName, loss: LossKey, lr: number, patch: PatchKey): ConfigResult[] {
  return rs.filter((r) => r.net === net && r.loss === loss && r.lr === lr && r.patch === patch);
}

/** One configuration over its seeds. */
export interface Cell {
  runs: ConfigResult[];
  /** Each run's training DSC (median over the last K iterations), over seeds. */
  train: Spread;
  /** Each run's held-out DSC (median over the held-out volumes), over seeds. */
  test: Spread;
  /** Runs that had not converged (stats.ts convergence). */
  notConverged: number;
}

export function cellOf(rs: ConfigResult[], net: NetName, loss: LossKey, lr: number, patch: PatchKey): Cell | undefined {
  const runs = runsOf(rs, net, loss, lr, patch);
  if (runs.length === 0) return undefined;
  return {runs, train: spread(runs.map((r) => r.dscMedian)), test: spread(runs.map((r) => r.testDscMedian)),
          notConverged: runs.filter((r) => r.converged === false).length};
}

/** A cell counts as not converged when most of its runs have not (its median is theirs). */
export function cellNotConverged(c: Cell): boolean {
  return 2 * c.notConverged > c.runs.length;
}

/** The marker of a cell that had not converged, with its legend. */
export const NOT_CONVERGED = '†';
export function notConvergedLegend(lastK: number): string {
  return `${NOT_CONVERGED} not converged: over the last ${2 * lastK} iterations the training DSC still moved by ` +
         `>= ${CONVERGENCE.DSC_MIN} or the loss still fell by >= ${100 * CONVERGENCE.LOSS_MIN}% of its starting level ` +
         `(least-squares slope >= ${CONVERGENCE.T_MIN} standard errors from 0), or that window is under ` +
         `${CONVERGENCE.MIN_WINDOW} iterations, in most of the cell's seeds: ` +
         'a value that says how far training got, not how well the loss trains.';
}

/** "median (IQR)" for one seed, "median [min, max]" over seeds, then the marker. */
export function formatCell(c: Cell, which: 'train' | 'test'): string {
  const x = c[which];
  const mark = which === 'train' && cellNotConverged(c) ? ` ${NOT_CONVERGED}` : '';
  if (c.runs.length === 1) return which === 'train' ? `${fmt(x.median)} (${fmt(c.runs[0].dscIQR)})${mark}` : fmt(x.median);
  return `${fmt(x.median)} [${fmt(x.min)}, ${fmt(x.max)}]${mark}`;
}

/** The seeds of a result set, ascending. */
function seedsOf(rs: ConfigResult[]): number[] {
  return [...new Set(rs.map((r) => r.seed))].sort((a, b) => a - b);
}

/** The imbalance of a patch size: the median foreground share of its training patches (same patches for every loss). */
function imbalance(rs: ConfigResult[], net: NetName, patch: PatchKey): number {
  const xs = rs.filter((r) => r.net === net && r.patch === patch).map((r) => r.imbalanceMedian).sort((a, b) => a - b);
  return quantile(xs, 0.5);
}

function lrsAscending(preset: Preset): number[] {
  return preset.lrs.slice().sort((a, b) => a - b);
}

/** What a training-table cell holds, in words. */
export function trainingCaption(rs: ConfigResult[], preset: Preset, net: NetName): string {
  const s = preset.setups[net];
  const n = seedsOf(rs.filter((r) => r.net === net)).length;
  const per = `training DSC over the last ${s.lastK} of ${s.iterations} iterations`;
  return (n <= 1 ? `Training DSC over the last ${s.lastK} of ${s.iterations} iterations, median (IQR)`
                 : `Median over ${n} seeds [min, max] of each run's median ${per}`) +
         "; imbalance = median foreground share of the training patches, the paper's (Table 1) and this run's.";
}

/** Paper-format table: rows patch x LR, columns losses. */
export function trainingTable(rs: ConfigResult[], preset: Preset, net: NetName): string {
  const head = ['Patch', 'Side', 'Imbalance: Table 1 / here', 'LR', ...preset.losses.map((l) => lossLabel(l, preset))];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const patch of preset.patches) {
    for (const lr of lrsAscending(preset)) {
      const cells = preset.losses.map((loss) => {
        const c = cellOf(rs, net, loss, lr, patch);
        return c ? formatCell(c, 'train') : '-';
      });
      const any = rs.find((r) => r.net === net && r.patch === patch);
      const side = any ? any.patchSize.join('x') : '-';
      lines.push(`| ${patch} | ${side} | ${pct(TABLE1_SHARE[net][patch])} / ${pct(imbalance(rs, net, patch))} | ${lrLabel(lr)} | ` +
                 `${cells.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

/** Held-out DSC (median over volumes; over seeds, median [min, max]), same layout. */
export function testTable(rs: ConfigResult[], preset: Preset, net: NetName): string {
  const head = ['Patch', 'LR', ...preset.losses.map((l) => lossLabel(l, preset))];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const patch of preset.patches) {
    for (const lr of lrsAscending(preset)) {
      const cells = preset.losses.map((loss) => {
        const c = cellOf(rs, net, loss, lr, patch);
        return c ? formatCell(c, 'test') : '-';
      });
      lines.push(`| ${patch} | ${lrLabel(lr)} | ${cells.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

export interface LossSummary {
  net: NetName;
  loss: LossKey;
  /** The loss with its setting (lossLabel). */
  label: string;
  configs: number;
  /** The configuration with the best training DSC (chooseByTraining): "patch LR". */
  chosen: string;
  chosenTrain: Spread;
  /** Its held-out DSC (median over volumes), over seeds. */
  chosenTest: Spread;
  /** Its DSC per held-out volume, median over seeds (the box plot's points). */
  chosenVolumes: number[];
  /** Held-out DSC across the learning rate x patch grid (cell medians). */
  gridTestMedian: number;
  /** Converged configurations whose training DSC is below 0.1 (the paper's "0 (0)" cells): the loss's failures. */
  collapsed: number;
  /** Configurations that had not converged: neither failures nor successes. */
  notConverged: number;
}

export function lossSummaries(rs: ConfigResult[], preset: Preset): LossSummary[] {
  const out: LossSummary[] = [];
  for (const net of preset.nets) {
    for (const loss of preset.losses) {
      const cells: Cell[] = [];
      const names: string[] = [];
      for (const patch of preset.patches) {
        for (const lr of lrsAscending(preset)) {
          const c = cellOf(rs, net, loss, lr, patch);
          if (c) {
            cells.push(c);
            names.push(`${patch} ${lrLabel(lr)}`);
          }
        }
      }
      if (cells.length === 0) continue;
      const k = chooseByTraining(cells.map((c) => c.train.median));
      const chosen = cells[k];
      const nVol = chosen.runs[0].testDsc.length;
      const chosenVolumes = Array.from({length: nVol}, (_, v) => spread(chosen.runs.map((r) => r.testDsc[v])).median);
      out.push({net, loss, label: lossLabel(loss, preset), configs: cells.length, chosen: names[k],
                chosenTrain: chosen.train, chosenTest: chosen.test, chosenVolumes,
                gridTestMedian: spread(cells.map((c) => c.test.median)).median,
                collapsed: cells.filter((c) => !cellNotConverged(c) && c.train.median < 0.1).length,
                notConverged: cells.filter(cellNotConverged).length});
    }
  }
  return out;
}

const range = (x: Spread) => (x.n > 1 ? ` [${fmt(x.min)}, ${fmt(x.max)}]` : '');

export function lossSummaryTable(ls: LossSummary[], net: NetName): string {
  const lines = ['| Loss | chosen by training DSC (patch, LR) | its training DSC | its held-out DSC | ' +
                 'held-out DSC, median over the grid | converged with train DSC < 0.1 | not converged |',
                 '|---|---|---|---|---|---|---|'];
  for (const s of ls.filter((x) => x.net === net)) {
    lines.push(`| ${s.label} | ${s.chosen} | ${fmt(s.chosenTrain.median)}${range(s.chosenTrain)} | ` +
               `${fmt(s.chosenTest.median)}${range(s.chosenTest)} | ${fmt(s.gridTestMedian)} | ` +
               `${s.collapsed} of ${s.configs} | ${s.notConverged} of ${s.configs} |`);
  }
  return lines.join('\n');
}

// ---- SVG ----

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A viridis-like ramp for DSC in [0, 1]. */
function ramp(v: number): string {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const t = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t));
  const f = t - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function svgDoc(w: number, h: number, body: string[]): string {
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ` +
          `font-family="Helvetica, Arial, sans-serif" font-size="11">`,
          `<rect width="${w}" height="${h}" fill="white"/>`, ...body, '</svg>', ''].join('\n');
}

/**
 * DSC (median over the last K iterations) over learning rate (rows) x patch
 * size (columns, with its imbalance), one panel per loss: the paper's Fig. 1
 * / 2 as a heat map with the values written in (isolineFigure draws it as
 * the paper does).
 */
export function dscFigure(rs: ConfigResult[], preset: Preset, net: NetName): string {
  const lrs = lrsAscending(preset).reverse();  // 1e-3 on top
  const cell = 52, cellH = 30, left = 56, top = 46, panelGap = 26;
  const pw = preset.patches.length * cell, ph = lrs.length * cellH;
  const W = left + preset.losses.length * (pw + panelGap) + 60;
  const H = top + ph + 52;
  const b: string[] = [];
  b.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${esc(NET_LABEL[net])}: ` +
         `training DSC (median, last ${preset.setups[net].lastK} of ${preset.setups[net].iterations} iterations` +
         `${seedsOf(rs).length > 1 ? `, median over ${seedsOf(rs).length} seeds` : ''}) over learning rate x patch size; ` +
         `${NOT_CONVERGED} not converged</text>`);
  preset.losses.forEach((loss, li) => {
    const x0 = left + li * (pw + panelGap);
    b.push(`<text x="${x0 + pw / 2}" y="${top - 10}" text-anchor="middle" font-weight="bold">${esc(lossLabel(loss, preset))}</text>`);
    lrs.forEach((lr, ri) => {
      if (li === 0) b.push(`<text x="${x0 - 6}" y="${top + ri * cellH + cellH / 2 + 4}" text-anchor="end">${lrLabel(lr)}</text>`);
      preset.patches.forEach((patch, ci) => {
        const c = cellOf(rs, net, loss, lr, patch);
        const v = c ? c.train.median : NaN;
        const x = x0 + ci * cell, y = top + ri * cellH;
        b.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cellH}" fill="${c ? ramp(v) : '#eee'}" stroke="white"/>`);
        b.push(`<text x="${x + cell / 2}" y="${y + cellH / 2 + 4}" text-anchor="middle" fill="${v > 0.6 ? 'black' : 'white'}">` +
               `${c ? fmt(v) + (cellNotConverged(c) ? NOT_CONVERGED : '') : '-'}</text>`);
      });
    });
    preset.patches.forEach((patch, ci) => {
      const x = x0 + ci * cell + cell / 2;
      b.push(`<text x="${x}" y="${top + ph + 14}" text-anchor="middle">${patch}</text>`);
      b.push(`<text x="${x}" y="${top + ph + 27}" text-anchor="middle" font-size="9">${pct(imbalance(rs, net, patch))} ` +
             `(${pct(TABLE1_SHARE[net][patch])})</text>`);
    });
  });
  b.push(`<text x="${left - 44}" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 ${left - 44} ${top + ph / 2})">learning rate</text>`);
  b.push(`<text x="${(W - 60) / 2}" y="${top + ph + 44}" text-anchor="middle">patch size ` +
         "(median foreground share of the training patches; the paper's Table 1 in brackets)</text>");
  // colour bar
  const bx = W - 44;
  for (let i = 0; i < 20; i++) {
    b.push(`<rect x="${bx}" y="${top + ph - (i + 1) * ph / 20}" width="12" height="${ph / 20 + 0.5}" fill="${ramp((i + 0.5) / 20)}"/>`);
  }
  b.push(`<text x="${bx + 16}" y="${top + ph}">0</text><text x="${bx + 16}" y="${top + 8}">1</text>`);
  return svgDoc(W, H, b);
}

/** Isoline levels of the DSC figures. */
export const ISOLINE_LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/** The isoline figure's size in SVG units. */
function isolineSize(preset: Preset): {W: number; H: number} {
  return {W: 62 + preset.losses.length * (170 + 34) + 70, H: 46 + 150 + 58};
}

/**
 * The paper's Fig. 1 / 2: per loss, isolines of the training DSC (cell
 * medians, bilinearly interpolated) over log10 learning rate (up) x patch
 * size (across, with the patches' foreground share), one colour per level,
 * the measured values at the grid nodes. Needs at least 2 learning rates
 * and 2 patch sizes for lines; the nodes are drawn regardless. Drawn once
 * for SVG and PNG (draw.ts).
 */
function drawIsolines(d: SvgDraw | RasterDraw, rs: ConfigResult[], preset: Preset, net: NetName): void {
  const lrs = lrsAscending(preset).reverse();                  // row 0: the highest rate, drawn on top
  const pw = 170, ph = 150, left = 62, top = 46, gap = 34;
  const {W} = isolineSize(preset);
  const rows = lrs.length, cols = preset.patches.length;
  const px = (x0: number, c: number) => x0 + (cols > 1 ? (c / (cols - 1)) * pw : pw / 2);
  const py = (r: number) => top + (rows > 1 ? (r / (rows - 1)) * ph : ph / 2);
  d.text(W / 2, 16, `${NET_LABEL[net]}: isolines of training DSC over log10 learning rate x patch size ` +
         `(${ISOLINE_LEVELS[0]} .. ${ISOLINE_LEVELS[ISOLINE_LEVELS.length - 1]}); ${NOT_CONVERGED} not converged`,
         {anchor: 'middle', size: 13, bold: true});
  preset.losses.forEach((loss, li) => {
    const x0 = left + li * (pw + gap);
    d.text(x0 + pw / 2, top - 14, lossLabel(loss, preset), {anchor: 'middle', bold: true});
    d.rect(x0, top, pw, ph, '#f7f7f7', '#999');
    const cells = lrs.map((lr) => preset.patches.map((patch) => cellOf(rs, net, loss, lr, patch)));
    const values = cells.map((row) => row.map((c) => (c ? c.train.median : NaN)));
    for (const level of ISOLINE_LEVELS) {
      const segs = isolines(values, level, 12);
      if (segs.length > 0) {
        d.path(segs.map(([[r1, c1], [r2, c2]]) => [px(x0, c1), py(r1), px(x0, c2), py(r2)]), ramp(level), 1.6);
      }
    }
    cells.forEach((row, r) => row.forEach((c, col) => {
      if (!c) return;
      const x = px(x0, col), y = py(r);
      d.circle(x, y, 2.5, 'black');
      const anchor = col === cols - 1 && cols > 1 ? 'end' : 'start';
      d.text(x + (anchor === 'end' ? -4 : 4), y + (r === rows - 1 && rows > 1 ? -5 : 12),
             `${fmt(c.train.median)}${cellNotConverged(c) ? NOT_CONVERGED : ''}`, {anchor, size: 10});
    }));
    preset.patches.forEach((patch, col) => {
      // the end nodes sit on the panel's edges: their labels run inwards, clear of the next panel
      const anchor = cols > 1 && col === 0 ? 'start' : cols > 1 && col === cols - 1 ? 'end' : 'middle';
      d.text(px(x0, col), top + ph + 14, patch, {anchor});
      d.text(px(x0, col), top + ph + 26, pct(imbalance(rs, net, patch)), {anchor, size: 9});
    });
    if (li === 0) lrs.forEach((lr, r) => d.text(x0 - 6, py(r) + 4, Math.log10(lr).toFixed(0), {anchor: 'end'}));
  });
  d.text(left - 40, top + ph / 2, 'log10 learning rate', {anchor: 'middle', vertical: true});
  d.text((W - 70) / 2, top + ph + 44, 'patch size (median foreground share of the training patches)', {anchor: 'middle'});
  const bx = W - 52;
  ISOLINE_LEVELS.forEach((level, i) => {
    const y = top + ph - (i + 0.5) * (ph / ISOLINE_LEVELS.length);
    d.line(bx, y, bx + 16, y, ramp(level), 3);
    d.text(bx + 20, y + 4, String(level), {size: 10});
  });
}

export function isolineFigure(rs: ConfigResult[], preset: Preset, net: NetName): string {
  const {W, H} = isolineSize(preset);
  const d = new SvgDraw(W, H);
  drawIsolines(d, rs, preset, net);
  return d.doc();
}

/** The isoline figure as a PNG, twice the SVG's size. */
export function isolinePng(rs: ConfigResult[], preset: Preset, net: NetName): Buffer {
  const {W, H} = isolineSize(preset);
  const d = new RasterDraw(W, H, 2);
  drawIsolines(d, rs, preset, net);
  return d.png();
}

function smooth(xs: number[], w: number): number[] {
  const out: number[] = [];
  let s = 0;
  for (let i = 0; i < xs.length; i++) {
    s += xs[i];
    if (i >= w) s -= xs[i - w];
    out.push(s / Math.min(i + 1, w));
  }
  return out;
}

/** Training DSC per iteration (moving average), one panel per loss, a line per learning rate x patch size. */
export function curvesFigure(rs: ConfigResult[], preset: Preset, net: NetName): string {
  const lrs = lrsAscending(preset).reverse();
  const colours = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e'];
  const dashes: Record<PatchKey, string> = {S: '', M: '5,3', L: '1.5,2.5'};
  const pw = 210, ph = 150, left = 44, top = 40, gap = 30;
  const W = left + preset.losses.length * (pw + gap) + 10;
  const H = top + ph + 70;
  const iterations = preset.setups[net].iterations;
  const window = Math.max(1, Math.round(iterations / 20));
  const b: string[] = [];
  b.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${esc(NET_LABEL[net])}: ` +
         `training DSC per iteration (moving average over ${window})</text>`);
  preset.losses.forEach((loss, li) => {
    const x0 = left + li * (pw + gap);
    b.push(`<text x="${x0 + pw / 2}" y="${top - 8}" text-anchor="middle" font-weight="bold">${esc(lossLabel(loss, preset))}</text>`);
    b.push(`<rect x="${x0}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
    for (const t of [0, 0.5, 1]) {
      const y = top + ph - t * ph;
      b.push(`<line x1="${x0}" x2="${x0 + pw}" y1="${y}" y2="${y}" stroke="#eee"/>`);
      if (li === 0) b.push(`<text x="${x0 - 4}" y="${y + 4}" text-anchor="end">${t}</text>`);
    }
    b.push(`<text x="${x0}" y="${top + ph + 13}">0</text><text x="${x0 + pw}" y="${top + ph + 13}" text-anchor="end">${iterations}</text>`);
    lrs.forEach((lr, ri) => {
      for (const patch of preset.patches) {
        const c = cellOf(rs, net, loss, lr, patch);
        if (!c || c.runs[0].dscCurve.length === 0) continue;
        // over seeds: the median of the smoothed curves, iteration by iteration
        const smoothed = c.runs.map((r) => smooth(r.dscCurve, window));
        const ys = smoothed[0].map((_, i) => spread(smoothed.map((sm) => sm[i])).median);
        const n = Math.max(1, ys.length - 1);
        // about one point per 2 px of the panel keeps the file small
        const every = Math.max(1, Math.ceil(ys.length / (pw / 2)));
        const pts = ys.flatMap((v, i) => (i % every === 0 || i === n
          ? [`${(x0 + (i / n) * pw).toFixed(1)},${(top + ph - Math.min(1, Math.max(0, v)) * ph).toFixed(1)}`] : []));
        b.push(`<polyline fill="none" stroke="${colours[ri % colours.length]}" stroke-width="1.3"` +
               `${dashes[patch] ? ` stroke-dasharray="${dashes[patch]}"` : ''} points="${pts.join(' ')}"/>`);
      }
    });
  });
  b.push(`<text x="${W / 2}" y="${top + ph + 28}" text-anchor="middle">iteration</text>`);
  let lx = left;
  const ly = top + ph + 50;
  lrs.forEach((lr, ri) => {
    b.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${colours[ri % colours.length]}" stroke-width="2"/>` +
           `<text x="${lx + 26}" y="${ly}">LR ${lrLabel(lr)}</text>`);
    lx += 90;
  });
  for (const patch of preset.patches) {
    b.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="black" stroke-width="1.3"` +
           `${dashes[patch] ? ` stroke-dasharray="${dashes[patch]}"` : ''}/><text x="${lx + 26}" y="${ly}">patch ${patch}</text>`);
    lx += 80;
  }
  return svgDoc(W, H, b);
}

/** Tukey's box of a sample: quartiles, whiskers at the farthest points within 1.5 IQR, the points beyond. */
export function tukeyBox(xs: number[]): {q1: number; median: number; q3: number; lo: number; hi: number; outliers: number[]} {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const q1 = quantile(s, 0.25), median = quantile(s, 0.5), q3 = quantile(s, 0.75);
  const reach = 1.5 * (q3 - q1);
  const inside = s.filter((x) => x >= q1 - reach && x <= q3 + reach);
  return {q1, median, q3, lo: inside[0] ?? NaN, hi: inside[inside.length - 1] ?? NaN,
          outliers: s.filter((x) => x < q1 - reach || x > q3 + reach)};
}

/**
 * The paper's Fig. 3: held-out DSC per loss as box plots, one point per
 * held-out volume (its DSC at the loss's configuration chosen by training
 * DSC, median over seeds).
 */
export function heldoutFigure(ls: LossSummary[], net: NetName): string {
  const mine = ls.filter((s) => s.net === net);
  const bw = 44, slot = 150, left = 50, top = 40, ph = 220;
  const W = left + mine.length * slot + 20;
  const H = top + ph + 62;
  const y = (v: number) => top + ph - Math.min(1, Math.max(0, v)) * ph;
  const b: string[] = [];
  b.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${esc(NET_LABEL[net])}: ` +
         'held-out DSC per volume at each loss\'s configuration chosen by training DSC</text>');
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    b.push(`<line x1="${left}" x2="${W - 20}" y1="${y(t)}" y2="${y(t)}" stroke="#eee"/>` +
           `<text x="${left - 6}" y="${y(t) + 4}" text-anchor="end">${t}</text>`);
  }
  b.push(`<text x="${left - 36}" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 ${left - 36} ${top + ph / 2})">DSC</text>`);
  mine.forEach((s, i) => {
    const cx = left + i * slot + slot / 2;
    const bx = tukeyBox(s.chosenVolumes);
    if (Number.isFinite(bx.median)) {
      b.push(`<line x1="${cx}" x2="${cx}" y1="${y(bx.lo)}" y2="${y(bx.hi)}" stroke="#333"/>`);
      for (const w of [bx.lo, bx.hi]) b.push(`<line x1="${cx - bw / 4}" x2="${cx + bw / 4}" y1="${y(w)}" y2="${y(w)}" stroke="#333"/>`);
      b.push(`<rect class="box" x="${cx - bw / 2}" y="${y(bx.q3)}" width="${bw}" height="${Math.max(0.5, y(bx.q1) - y(bx.q3))}" ` +
             `fill="${ramp(bx.median)}" fill-opacity="0.6" stroke="#333"/>`);
      b.push(`<line x1="${cx - bw / 2}" x2="${cx + bw / 2}" y1="${y(bx.median)}" y2="${y(bx.median)}" stroke="black" stroke-width="2"/>`);
      for (const o of bx.outliers) b.push(`<circle cx="${cx}" cy="${y(o)}" r="2.5" fill="none" stroke="#333"/>`);
    }
    b.push(`<text x="${cx}" y="${top + ph + 16}" text-anchor="middle" font-weight="bold">${esc(s.label)}</text>`);
    b.push(`<text x="${cx}" y="${top + ph + 30}" text-anchor="middle" font-size="9">${esc(s.chosen)}, ` +
           `${s.chosenVolumes.length} volumes, median ${fmt(bx.median)}</text>`);
  });
  return svgDoc(W, H, b);
}

export interface WrittenReport {
  files: string[];
  summary: string;
}

/** Writes every output into `out` and returns the file list and the summary text. */
export function writeReport(out: string, rs: ConfigResult[], meta: ReportMeta): WrittenReport {
  fs.mkdirSync(out, {recursive: true});
  const files: string[] = [];
  const write = (name: string, text: string | Buffer) => {
    fs.writeFileSync(path.join(out, name), text);
    files.push(name);
  };
  const p = meta.preset;
  const ls = lossSummaries(rs, p);
  const md: string[] = [
    `# segloss study: preset ${presetLabel(p)}`,
    '',
    `- backend: ${meta.backendNote}`,
    `- code: segloss ${meta.version.package}, study and lib sources ${meta.version.code} (sha256, first 16 hex digits)`,
    `- grid: ${p.nets.length} networks x ${p.losses.length} losses (${p.losses.join(', ')}) x learning rates ` +
      `${p.lrs.map(lrLabel).join(', ')} x patch sizes ${p.patches.join(', ')}; Adam; ` +
      `${p.nets.map((n) => `${NET_LABEL[n]} ${p.setups[n].iterations} iterations, DSC statistics over the last ${p.setups[n].lastK}`).join('; ')}; ` +
      `data seed ${meta.seed}, ${p.seeds === 1 ? `training seed ${meta.seed}` : `training seeds ${meta.seed} .. ${meta.seed + p.seeds - 1}`}`,
    `- losses: ${lossSettingsNote(p)}`,
    `- this run: ${meta.ran} configurations trained, ${meta.skipped} resumed from disk, ${meta.seconds.toFixed(1)} s; ` +
      `training + held-out segmentation of all ${rs.length} configurations took ${rs.reduce((t, r) => t + r.seconds, 0).toFixed(1)} s ` +
      `(${[...new Set(rs.map((r) => r.backend))].join(', ')})`,
    '',
  ];
  for (const net of p.nets) {
    if (!rs.some((r) => r.net === net)) continue;
    const tt = trainingTable(rs, p, net);
    const ht = testTable(rs, p, net);
    const st = lossSummaryTable(ls, net);
    write(`table_${net}.md`, `${trainingCaption(rs, p, net)}\n\n${tt}\n\n${notConvergedLegend(p.setups[net].lastK)}\n`);
    write(`test_${net}.md`, `${ht}\n`);
    write(`fig_dsc_${net}.svg`, dscFigure(rs, p, net));
    write(`fig_isolines_${net}.svg`, isolineFigure(rs, p, net));
    write(`fig_isolines_${net}.png`, isolinePng(rs, p, net));
    write(`fig_curves_${net}.svg`, curvesFigure(rs, p, net));
    write(`fig_heldout_${net}.svg`, heldoutFigure(ls, net));
    const legend = notConvergedLegend(p.setups[net].lastK);
    const nVol = rs.find((r) => r.net === net)!.testDsc.length;
    md.push(`## ${NET_LABEL[net]}`, '', `data: ${meta.data[net]}`, '',
            trainingCaption(rs, p, net), '', tt, '', legend, '',
            `Held-out DSC (median over the ${nVol} held-out volumes, each segmented whole` +
              `${p.seeds > 1 ? '; median [min, max] over seeds' : ''}):`, '', ht, '',
            'Per loss: the configuration with the best training DSC and its held-out DSC (the held-out volumes ' +
              'never choose it); cells that had not converged are counted apart from failures:', '', st, '',
            `![DSC isolines over log10 LR x patch size](fig_isolines_${net}.svg)`, '',
            `![DSC over LR x patch size](fig_dsc_${net}.svg)`, '', `![training curves](fig_curves_${net}.svg)`, '',
            `![held-out DSC per loss](fig_heldout_${net}.svg)`, '');
  }
  const summary = md.join('\n');
  write('summary.md', summary);
  const json = {
    preset: p, version: meta.version, backend: meta.backend, backendNote: meta.backendNote, seed: meta.seed, data: meta.data,
    seconds: meta.seconds, ran: meta.ran, skipped: meta.skipped, lossSummaries: ls, configs: rs,
  };
  write('results.json', JSON.stringify(json, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1));
  return {files, summary};
}
