/**
 * Isolines of a field known on a small rectangular grid (the study's DSC
 * over learning rate x patch size, 3 x 3): the field is interpolated
 * bilinearly, sampled `per` times per grid step, and traced by marching
 * squares into line segments, as the paper's Figs. 1 and 2 draw DSC.
 */

/** values[row][col]; NaN where a cell has no result. Returns the field at fractional (row, col), NaN near a hole. */
export function bilinear(values: number[][], r: number, c: number): number {
  const rows = values.length, cols = values[0].length;
  const r0 = Math.min(Math.floor(r), rows - 2), c0 = Math.min(Math.floor(c), cols - 2);
  if (rows === 1 || cols === 1) return NaN;
  const fr = r - r0, fc = c - c0;
  const v00 = values[r0][c0], v01 = values[r0][c0 + 1], v10 = values[r0 + 1][c0], v11 = values[r0 + 1][c0 + 1];
  return (1 - fr) * ((1 - fc) * v00 + fc * v01) + fr * ((1 - fc) * v10 + fc * v11);
}

/** A segment in grid coordinates: [row, col] to [row, col]. */
export type Segment = [[number, number], [number, number]];

/**
 * The isoline `level` of the bilinear field as segments, from marching
 * squares on a grid refined `per` times. A saddle is split by the value at
 * the square's centre. Squares touching a NaN are skipped.
 */
export function isolines(values: number[][], level: number, per: number): Segment[] {
  const rows = values.length, cols = values[0]?.length ?? 0;
  if (rows < 2 || cols < 2) return [];
  const R = (rows - 1) * per, C = (cols - 1) * per;
  const f: number[][] = [];
  for (let i = 0; i <= R; i++) {
    f.push([]);
    for (let j = 0; j <= C; j++) f[i].push(bilinear(values, i / per, j / per));
  }
  const out: Segment[] = [];
  const cross = (a: number, b: number) => (level - a) / (b - a);
  for (let i = 0; i < R; i++) {
    for (let j = 0; j < C; j++) {
      const tl = f[i][j], tr = f[i][j + 1], br = f[i + 1][j + 1], bl = f[i + 1][j];
      if (![tl, tr, br, bl].every(Number.isFinite)) continue;
      // crossings on the edges top, right, bottom, left, in that order round the square
      const pts: [number, number][] = [];
      if ((tl < level) !== (tr < level)) pts.push([i, j + cross(tl, tr)]);
      if ((tr < level) !== (br < level)) pts.push([i + cross(tr, br), j + 1]);
      if ((bl < level) !== (br < level)) pts.push([i + 1, j + cross(bl, br)]);
      if ((tl < level) !== (bl < level)) pts.push([i + cross(tl, bl), j]);
      const scale = (p: [number, number]): [number, number] => [p[0] / per, p[1] / per];
      if (pts.length === 2) {
        out.push([scale(pts[0]), scale(pts[1])]);
      } else if (pts.length === 4) {
        // a saddle: with the centre on top-left's side, top-left and bottom-right connect through it and
        // the lines cut off top-right (top with right) and bottom-left (bottom with left); otherwise they
        // cut off top-left (top with left) and bottom-right (right with bottom)
        const centre = (tl + tr + br + bl) / 4;
        if ((centre < level) === (tl < level)) {
          out.push([scale(pts[0]), scale(pts[1])], [scale(pts[2]), scale(pts[3])]);
        } else {
          out.push([scale(pts[0]), scale(pts[3])], [scale(pts[1]), scale(pts[2])]);
        }
      }
    }
  }
  return out;
}
