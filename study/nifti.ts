/**
 * `--data DIR`: the user's own scans as NIfTI image / label pairs, read with
 * nifti-reader-js (NIfTI-1 and NIfTI-2, .nii or .nii.gz).
 *
 * Two layouts are recognised (file names pair the images with the labels):
 * - flat: `DIR/<case>_image.nii[.gz]` with `DIR/<case>_label.nii[.gz]`;
 * - Medical Segmentation Decathlon: `DIR/imagesTr/<case>.nii[.gz]` with
 *   `DIR/labelsTr/<case>.nii[.gz]`.
 * An image is 3D (one channel) or 4D with the channels (e.g. T1, T2, FLAIR)
 * on the 4th axis; the label is 3D, and every value > 0 is foreground (the
 * study is the paper's two-class problem). Images are z-scored per volume
 * and channel (the paper z-scored on white matter, which needs a WM mask).
 */
import * as fs from 'fs';
import * as path from 'path';

import type * as NiftiReader from 'nifti-reader-js';

import {foregroundFraction, product, Volume, zscore} from './synth';

export interface NiftiArray {
  /** NIfTI dims: [nx, ny, nz, nt...] (x fastest in memory). */
  dims: number[];
  data: Float64Array;
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

/**
 * nifti-reader-js, an optional dependency: loaded by `--data` only, so that
 * the rest of the study and the library never need it.
 */
function niftiReader(): typeof NiftiReader {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require('nifti-reader-js') as typeof NiftiReader;
  } catch (e) {
    throw new Error(`segloss study --data reads NIfTI files with nifti-reader-js, an optional dependency that is not ` +
                    `installed here (${(e as Error).message.split('\n')[0]}): npm install nifti-reader-js`);
  }
}

/** Reads a NIfTI file's voxel values (scaled by scl_slope / scl_inter when set) as float64, x fastest. */
export function readNifti(file: string): NiftiArray {
  const nifti = niftiReader();
  let data = toArrayBuffer(fs.readFileSync(file));
  if (nifti.isCompressed(data)) data = nifti.decompress(data) as ArrayBuffer;
  if (!nifti.isNIFTI(data)) throw new TypeError(`Expected a NIfTI-1 or NIfTI-2 file for ${file} but received a file without a NIfTI header`);
  const header = nifti.readHeader(data);
  if (!header) throw new TypeError(`Expected a readable NIfTI header for ${file} but received none`);
  const raw = nifti.readImage(header, data);
  const ndim = header.dims[0];
  const dims = header.dims.slice(1, 1 + ndim);
  const n = product(dims);
  const view = new DataView(raw);
  const le = header.littleEndian;
  const readers: Record<number, [number, (o: number) => number]> = {
    2: [1, (o) => view.getUint8(o)],
    4: [2, (o) => view.getInt16(o, le)],
    8: [4, (o) => view.getInt32(o, le)],
    16: [4, (o) => view.getFloat32(o, le)],
    64: [8, (o) => view.getFloat64(o, le)],
    256: [1, (o) => view.getInt8(o)],
    512: [2, (o) => view.getUint16(o, le)],
    768: [4, (o) => view.getUint32(o, le)],
  };
  const reader = readers[header.datatypeCode];
  if (!reader) {
    throw new TypeError(`Expected a NIfTI datatype uint8, int8, int16, uint16, int32, uint32, float32 or float64 for ${file} ` +
                        `but received datatype code ${header.datatypeCode}`);
  }
  const [size, get] = reader;
  if (raw.byteLength < n * size) {
    throw new RangeError(`Expected ${n * size} bytes of voxel data for ${file} but received ${raw.byteLength}`);
  }
  const slope = header.scl_slope && Number.isFinite(header.scl_slope) ? header.scl_slope : 1;
  const inter = header.scl_slope && Number.isFinite(header.scl_inter) ? header.scl_inter : 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = get(i * size) * slope + inter;
  return {dims, data: out};
}

export interface Case {
  name: string;
  image: string;
  label: string;
}

const NII = /\.nii(\.gz)?$/;

/** Finds the image / label pairs in DIR (either layout), sorted by case name. */
export function findCases(dir: string): Case[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new RangeError(`Expected a directory of NIfTI files for --data but received ${dir}`);
  }
  const cases: Case[] = [];
  const imagesTr = path.join(dir, 'imagesTr');
  if (fs.existsSync(imagesTr)) {
    for (const f of fs.readdirSync(imagesTr).filter((f) => NII.test(f) && !f.startsWith('.'))) {
      const label = path.join(dir, 'labelsTr', f);
      if (fs.existsSync(label)) cases.push({name: f.replace(NII, ''), image: path.join(imagesTr, f), label});
    }
  } else {
    for (const f of fs.readdirSync(dir).filter((f) => /_image\.nii(\.gz)?$/.test(f))) {
      const name = f.replace(/_image\.nii(\.gz)?$/, '');
      const label = ['.nii', '.nii.gz'].map((e) => path.join(dir, `${name}_label${e}`)).find((p) => fs.existsSync(p));
      if (label) cases.push({name, image: path.join(dir, f), label});
    }
  }
  cases.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (cases.length < 2) {
    throw new RangeError(`Expected at least 2 image/label pairs (<case>_image.nii[.gz] + <case>_label.nii[.gz], ` +
                         `or imagesTr/ + labelsTr/) for --data but received ${cases.length} in ${dir}`);
  }
  return cases;
}

/**
 * One case as a study Volume: dims [z, y, x] (row-major, x fastest, as the
 * file stores it), channels last, z-scored, label > 0 as foreground.
 */
export function loadCase(c: Case): Volume {
  const img = readNifti(c.image);
  const lab = readNifti(c.label);
  const spatial = img.dims.slice(0, 3);
  while (spatial.length < 3) spatial.push(1);
  const channels = img.dims.length > 3 ? product(img.dims.slice(3)) : 1;
  const labSpatial = lab.dims.slice(0, 3);
  while (labSpatial.length < 3) labSpatial.push(1);
  if (spatial.join('x') !== labSpatial.join('x') || product(lab.dims) !== product(labSpatial)) {
    throw new RangeError(`Expected a label of the image's size ${spatial.join('x')} for ${c.label} ` +
                         `but received ${lab.dims.join('x')}`);
  }
  const V = product(spatial);
  const image = new Float32Array(V * channels);
  for (let ch = 0; ch < channels; ch++) {
    for (let v = 0; v < V; v++) image[v * channels + ch] = img.data[ch * V + v];
  }
  zscore(image, channels);
  const label = new Uint8Array(V);
  for (let v = 0; v < V; v++) label[v] = lab.data[v] > 0 ? 1 : 0;
  const dims = [spatial[2], spatial[1], spatial[0]];
  const vol: Volume = {dims, channels, image, label, foreground: 0, source: path.basename(c.image)};
  vol.foreground = Math.round(foregroundFraction(label) * V);
  return vol;
}
