/**
 * Figures drawn once for two outputs: SVG text, and PNG pixels (the same
 * layout rendered at twice the size, text in a 5 x 7 bitmap font scaled by
 * 2, encoded with node's zlib). No image library: tfjs-node and the study's
 * other dependencies have none to lend, and the figures need only lines,
 * rectangles, circles and short labels.
 */
import * as zlib from 'zlib';

/** What a figure is drawn with (coordinates in SVG units). */
export interface Draw {
  rect(x: number, y: number, w: number, h: number, fill: string | null, stroke?: string): void;
  line(x1: number, y1: number, x2: number, y2: number, colour: string, width: number): void;
  circle(cx: number, cy: number, r: number, fill: string): void;
  text(x: number, y: number, s: string, o?: TextOptions): void;
}

export interface TextOptions {
  anchor?: 'start' | 'middle' | 'end';
  /** Font size in SVG units (default 11). */
  size?: number;
  bold?: boolean;
  colour?: string;
  /** Rotated 90 degrees anticlockwise about (x, y), for a vertical axis title. */
  vertical?: boolean;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Collects SVG elements; `doc()` wraps them in the document. */
export class SvgDraw implements Draw {
  private readonly body: string[] = [];

  constructor(private readonly w: number, private readonly h: number) {}

  rect(x: number, y: number, w: number, h: number, fill: string | null, stroke?: string): void {
    this.body.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="${fill ?? 'none'}"` +
                   `${stroke ? ` stroke="${stroke}"` : ''}/>`);
  }

  line(x1: number, y1: number, x2: number, y2: number, colour: string, width: number): void {
    this.body.push(`<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" ` +
                   `stroke="${colour}" stroke-width="${width}"/>`);
  }

  /** Many segments of one colour as one path (smaller than a line each). */
  path(segments: [number, number, number, number][], colour: string, width: number): void {
    const d = segments.map(([x1, y1, x2, y2]) => `M${x1.toFixed(1)} ${y1.toFixed(1)}L${x2.toFixed(1)} ${y2.toFixed(1)}`).join('');
    this.body.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="${width}"/>`);
  }

  circle(cx: number, cy: number, r: number, fill: string): void {
    this.body.push(`<circle cx="${cx}" cy="${cy}" r="${r}" fill="${fill}"/>`);
  }

  text(x: number, y: number, s: string, o: TextOptions = {}): void {
    const attrs = [`x="${x}"`, `y="${y}"`];
    if (o.anchor && o.anchor !== 'start') attrs.push(`text-anchor="${o.anchor}"`);
    if (o.size && o.size !== 11) attrs.push(`font-size="${o.size}"`);
    if (o.bold) attrs.push('font-weight="bold"');
    if (o.colour) attrs.push(`fill="${o.colour}"`);
    if (o.vertical) attrs.push(`transform="rotate(-90 ${x} ${y})"`);
    this.body.push(`<text ${attrs.join(' ')}>${esc(s)}</text>`);
  }

  doc(): string {
    return [`<svg xmlns="http://www.w3.org/2000/svg" width="${this.w}" height="${this.h}" viewBox="0 0 ${this.w} ${this.h}" ` +
            'font-family="Helvetica, Arial, sans-serif" font-size="11">',
            `<rect width="${this.w}" height="${this.h}" fill="white"/>`, ...this.body, '</svg>', ''].join('\n');
  }
}

/**
 * The 5 x 7 glyphs: a character, then its seven rows as two hex digits each
 * (bit 4 the leftmost column), in the classic dot-matrix shapes; '†'
 * and 'λ' for the not-converged mark and lambda. Others draw as a box.
 */
const FONT_TABLE = [
  '00E11131519110E 1040C040404040E 20E11010204081F 31F02040201110E 402060A121F0202 51F101E0101110E',
  '60608101E11110E 71F010204080808 80E11110E11110E 90E11110F01020C A0E1111111F1111 B1E11111E11111E',
  'C0E11101010110E D1C12111111121C E1F10101E10101F F1F10101E101010 G0E11101711110F H1111111F111111',
  'I0E04040404040E J0702020202120C K11121418141211 L1010101010101F M111B1515111111 N11111915131111',
  'O0E11111111110E P1E11111E101010 Q0E11111115120D R1E11111E141211 S0F10100E01011E T1F040404040404',
  'U1111111111110E V11111111110A04 W1111111515150A X11110A040A1111 Y1111110A040404 Z1F01020408101F',
  'a00000E010F110F b1010161911111E c00000E1010110E d01010D1311110F e00000E111F100E f0609081C080808',
  'g000F11110F010E h10101619111111 i04000C0404040E j0200060202120C k10101214181412 l0C04040404040E',
  'm00001A15151111 n00001619111111 o00000E1111110E p00001E111E1010 q00000D130F0101 r00001619101010',
  's00000E100E011E t08081C08080906 u0000111111130D v00001111110A04 w0000111115150A x0000110A040A11',
  'y000011110F010E z00001F0204081F .00000000000C0C ,000000000C0408 :000C0C000C0C00 ;000C0C000C0408',
  '(02040808080402 )08040202020408 -0000001F000000 %18190204081303 /00010204081000 [0E08080808080E',
  ']0E02020202020E +0004041F040400 =00001F001F0000 _0000000000001F \'0C040800000000 !04040404000004',
  '?0E110102040004 *0004150E150400 <02040810080402 >08040201020408 #0A0A1F0A1F0A0A "0A0A0A00000000',
  '&0C12140815120D ^040A1100000000 †040E0404040400 λ0804040A0A1111',
].join(' ');

const GLYPHS = new Map<string, number[]>();
for (const entry of FONT_TABLE.split(' ')) {
  const ch = String.fromCodePoint(entry.codePointAt(0)!);
  const hex = entry.slice(ch.length);
  GLYPHS.set(ch, Array.from({length: 7}, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16)));
}
const BOX = [0x1f, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1f];

/** 'rgb(r,g,b)', '#rgb', '#rrggbb', 'white', 'black' -> [r, g, b]. */
export function parseColour(c: string): [number, number, number] {
  const rgb = /^rgb\((\d+),\s*(\d+),\s*(\d+)\)$/.exec(c);
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
  if (c === 'white') return [255, 255, 255];
  if (c === 'black') return [0, 0, 0];
  const h = /^#([0-9a-f]+)$/i.exec(c)?.[1];
  if (h && h.length === 3) return [0, 1, 2].map((i) => parseInt(h[i] + h[i], 16)) as [number, number, number];
  if (h && h.length === 6) return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)) as [number, number, number];
  throw new RangeError(`Expected a colour as rgb(r,g,b), #rgb, #rrggbb, white or black for colour but received ${JSON.stringify(c)}`);
}

/** Pixels, RGB, white at first; drawn at `scale` pixels per SVG unit. */
export class RasterDraw implements Draw {
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint8Array;

  constructor(w: number, h: number, private readonly scale = 2) {
    this.width = Math.ceil(w * scale);
    this.height = Math.ceil(h * scale);
    this.pixels = new Uint8Array(this.width * this.height * 3).fill(255);
  }

  private set(x: number, y: number, c: [number, number, number]): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    this.pixels[i] = c[0];
    this.pixels[i + 1] = c[1];
    this.pixels[i + 2] = c[2];
  }

  private fill(x0: number, y0: number, x1: number, y1: number, c: [number, number, number]): void {
    for (let y = Math.round(y0); y < Math.round(y1); y++) for (let x = Math.round(x0); x < Math.round(x1); x++) this.set(x, y, c);
  }

  rect(x: number, y: number, w: number, h: number, fill: string | null, stroke?: string): void {
    const s = this.scale;
    if (fill && fill !== 'none') this.fill(x * s, y * s, (x + w) * s, (y + h) * s, parseColour(fill));
    if (stroke) {
      for (const [a, b, c, d] of [[x, y, x + w, y], [x + w, y, x + w, y + h], [x, y + h, x + w, y + h], [x, y, x, y + h]]) {
        this.line(a, b, c, d, stroke, 1);
      }
    }
  }

  line(x1: number, y1: number, x2: number, y2: number, colour: string, width: number): void {
    // stamps of the line's width along it, one per pixel of length
    const s = this.scale, c = parseColour(colour);
    const n = Math.max(1, Math.ceil(Math.hypot(x2 - x1, y2 - y1) * s));
    const half = Math.max(0.5, (width * s) / 2);
    for (let i = 0; i <= n; i++) {
      const x = (x1 + ((x2 - x1) * i) / n) * s, y = (y1 + ((y2 - y1) * i) / n) * s;
      this.fill(x - half, y - half, x + half, y + half, c);
    }
  }

  path(segments: [number, number, number, number][], colour: string, width: number): void {
    for (const [x1, y1, x2, y2] of segments) this.line(x1, y1, x2, y2, colour, width);
  }

  circle(cx: number, cy: number, r: number, fill: string): void {
    const s = this.scale, c = parseColour(fill), R = r * s;
    for (let y = Math.floor(cy * s - R); y <= Math.ceil(cy * s + R); y++) {
      for (let x = Math.floor(cx * s - R); x <= Math.ceil(cx * s + R); x++) {
        if ((x + 0.5 - cx * s) ** 2 + (y + 0.5 - cy * s) ** 2 <= R * R) this.set(x, y, c);
      }
    }
  }

  /** Text in the bitmap font: glyph cells 6 x 8 font pixels, `size` 11 -> 1 font pixel = 1 SVG unit. */
  text(x: number, y: number, str: string, o: TextOptions = {}): void {
    const s = this.scale, c = parseColour(o.colour ?? 'black');
    const dot = Math.max(1, Math.round((s * (o.size ?? 11)) / 11));   // pixels per font pixel
    const chars = Array.from(str);
    const advance = 6 * dot;
    const width = chars.length * advance - dot;
    const shift = o.anchor === 'middle' ? width / 2 : o.anchor === 'end' ? width : 0;
    // (u, v): along the text and down from its top; the baseline is y, as in SVG
    const put = (u: number, v: number) => {
      if (o.vertical) this.fill(x * s + v, y * s - u, x * s + v + dot, y * s - u + dot, c);
      else this.fill(x * s + u, y * s + v, x * s + u + dot, y * s + v + dot, c);
    };
    chars.forEach((ch, k) => {
      const rows = GLYPHS.get(ch) ?? (ch === ' ' ? [0, 0, 0, 0, 0, 0, 0] : BOX);
      for (let r = 0; r < 7; r++) {
        for (let col = 0; col < 5; col++) {
          if (!(rows[r] & (0x10 >> col))) continue;
          const u = k * advance + col * dot - shift;
          const v = (r - 7) * dot;
          put(u, v);
          if (o.bold) put(u + 1, v);
        }
      }
    });
  }

  /** The image as a PNG file: 8-bit RGB, no interlace, one deflate stream. */
  png(): Buffer {
    const raw = Buffer.alloc((this.width * 3 + 1) * this.height);
    for (let y = 0; y < this.height; y++) {
      raw[y * (this.width * 3 + 1)] = 0;   // filter: none
      raw.set(this.pixels.subarray(y * this.width * 3, (y + 1) * this.width * 3), y * (this.width * 3 + 1) + 1);
    }
    const header = Buffer.alloc(13);
    header.writeUInt32BE(this.width, 0);
    header.writeUInt32BE(this.height, 4);
    header[8] = 8;    // bit depth
    header[9] = 2;    // colour type: RGB
    return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header),
                          chunk('IDAT', zlib.deflateSync(raw, {level: 9})), chunk('IEND', Buffer.alloc(0))]);
  }
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO 3309, as PNG uses). */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
