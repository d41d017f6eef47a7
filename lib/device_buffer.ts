/**
 * Tensors in GPU memory, for device-resident pipelines: upload once, compute
 * a loss and its gradient many times without host copies, download what you
 * need. `DeviceBuffer.fromDevicePointer` wraps memory another library owns
 * (a CUDA allocation of the same process and device), with no copy.
 */
import {enums, native} from './native';
import type {DeviceTensor} from './validate';
import {show} from './validate';

/** Element types a DeviceBuffer holds. */
export type DeviceDType = 'float32' | 'uint8' | 'uint16' | 'int32';
/** The typed arrays of those element types. */
export type DeviceTypedArray = Float32Array | Uint8Array | Uint16Array | Int32Array;

const BYTES: Record<DeviceDType, number> = {float32: 4, uint8: 1, uint16: 2, int32: 4};
const CTORS: Record<DeviceDType, new (n: number) => DeviceTypedArray> = {
  float32: Float32Array, uint8: Uint8Array, uint16: Uint16Array, int32: Int32Array,
};

function dtypeOf(a: unknown): DeviceDType | null {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Uint16Array) return 'uint16';
  if (a instanceof Int32Array) return 'int32';
  return null;
}

function checkLength(n: unknown, arg: string): number {
  if (typeof n !== 'number') throw new TypeError(`Expected an integer length for ${arg} but received ${show(n)}`);
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new RangeError(`Expected an integer length >= 0 for ${arg} but received ${show(n)}`);
  return n;
}

function checkDType(d: unknown): DeviceDType {
  if (typeof d !== 'string' || !(d in BYTES)) {
    const what = `one of ${Object.keys(BYTES).map((k) => `'${k}'`).join(', ')}`;
    if (typeof d !== 'string') throw new TypeError(`Expected ${what} for dtype but received ${show(d)}`);
    throw new RangeError(`Expected ${what} for dtype but received ${show(d)}`);
  }
  return d as DeviceDType;
}

// Owned memory that is garbage-collected without release() is freed here.
const registry = new FinalizationRegistry<{device: number; pointer: bigint}>((h) => {
  try {
    native().deviceFree(h.device, h.pointer);
  } catch {
    // nothing to report to at collection time
  }
});

/**
 * `length` elements of `dtype` in device memory.
 *
 * @example
 * ```ts
 * import {DeviceBuffer, lossOnDevice} from 'segloss';
 * const x = DeviceBuffer.upload(logits);          // Float32Array, [B, ...spatial, C]
 * const y = DeviceBuffer.upload(labels);          // Uint8Array, [B, ...spatial]
 * const g = DeviceBuffer.alloc(logits.length, 'float32');
 * for (let step = 0; step < 100; step++) {
 *   const {loss} = lossOnDevice('generalizedDice', {prediction: x, target: y, shape, activation: 'softmax', gradient: g});
 * }
 * const grad = g.download();                      // Float32Array
 * [x, y, g].forEach((b) => b.release());
 * ```
 */
export class DeviceBuffer implements DeviceTensor {
  #pointer: bigint | null;
  /** Elements. */
  readonly length: number;
  readonly dtype: DeviceDType;
  /** Whether release() frees the memory (false for fromDevicePointer). */
  readonly owned: boolean;
  /** @internal The native device id the memory belongs to. */
  readonly deviceId: number;

  private constructor(pointer: bigint, length: number, dtype: DeviceDType, owned: boolean, deviceId: number) {
    this.#pointer = pointer;
    this.length = length;
    this.dtype = dtype;
    this.owned = owned;
    this.deviceId = deviceId;
    if (owned) registry.register(this, {device: deviceId, pointer}, this);
  }

  /** @internal */
  static _alloc(deviceId: number, length: unknown, dtype: unknown): DeviceBuffer {
    const n = checkLength(length, 'length');
    const d = checkDType(dtype);
    const p = native().deviceAlloc(deviceId, n * BYTES[d]);
    return new DeviceBuffer(p, n, d, true, deviceId);
  }

  /** @internal */
  static _upload(deviceId: number, data: unknown): DeviceBuffer {
    const d = dtypeOf(data);
    if (d === null) {
      throw new TypeError(`Expected a Float32Array, Uint8Array, Uint16Array or Int32Array for data but received ${show(data)}`);
    }
    const a = data as DeviceTypedArray;
    const b = DeviceBuffer._alloc(deviceId, a.length, d);
    native().deviceCopy(deviceId, b.pointer, a, true);
    return b;
  }

  /** @internal */
  static _wrap(deviceId: number, pointer: unknown, length: unknown, dtype: unknown): DeviceBuffer {
    if (typeof pointer !== 'bigint') throw new TypeError(`Expected a device address (BigInt) for pointer but received ${show(pointer)}`);
    if (pointer <= 0n || pointer >= 1n << 64n) {
      throw new RangeError(`Expected a non-null 64-bit device address for pointer but received ${pointer}`);
    }
    return new DeviceBuffer(pointer, checkLength(length, 'length'), checkDType(dtype), false, deviceId);
  }

  /** Uninitialised device memory for `length` elements of `dtype` (e.g. a gradient to fill). */
  static alloc(length: number, dtype: DeviceDType): DeviceBuffer {
    return DeviceBuffer._alloc(enums().device.cuda, length, dtype);
  }

  /** A device copy of `data`. */
  static upload(data: DeviceTypedArray): DeviceBuffer {
    return DeviceBuffer._upload(enums().device.cuda, data);
  }

  /**
   * Device memory owned by another library (a CUDA device pointer of this
   * process, as a BigInt), used in place: no copy, and release() does not
   * free it. The owner must keep it alive while segloss uses it, and must
   * have finished writing it (synchronise its stream) before the call:
   * segloss's kernels run on their own non-blocking stream.
   */
  static fromDevicePointer(pointer: bigint, length: number, dtype: DeviceDType): DeviceBuffer {
    return DeviceBuffer._wrap(enums().device.cuda, pointer, length, dtype);
  }

  /** The device address. Throws after release(). */
  get pointer(): bigint {
    if (this.#pointer === null) throw new TypeError('Expected a live DeviceBuffer for buffer but received a released DeviceBuffer');
    return this.#pointer;
  }

  get byteLength(): number {
    return this.length * BYTES[this.dtype];
  }

  /** The contents, into `out` (a typed array of the same dtype and length) or a new typed array. */
  download<T extends DeviceTypedArray>(out?: T): T {
    const dst = out ?? (new CTORS[this.dtype](this.length) as T);
    if (dtypeOf(dst) !== this.dtype || dst.length !== this.length) {
      throw new TypeError(`Expected a ${CTORS[this.dtype].name} of length ${this.length} for out but received ${show(dst)}`);
    }
    native().deviceCopy(this.deviceId, this.pointer, dst, false);
    return dst;
  }

  /** Frees owned memory now (idempotent); the buffer cannot be used afterwards. */
  release(): void {
    if (this.#pointer === null) return;
    if (this.owned) {
      registry.unregister(this);
      native().deviceFree(this.deviceId, this.#pointer);
    }
    this.#pointer = null;
  }
}

/** Whether `v` is a DeviceBuffer. */
export function isDeviceBuffer(v: unknown): v is DeviceBuffer {
  return v instanceof DeviceBuffer;
}
