/**
 * The test hooks of an addon built with SEGLOSS_TEST_HOOKS (a source
 * checkout's build; CMakeLists.txt): the CUDA kernels run on the CPU through
 * the SIMT emulation (cuda/simt.h) as device 'cuda-emulated'. Not part of the
 * package: the public `device` option has no such value.
 */
import {DeviceBuffer, DeviceDType, DeviceTypedArray} from '../lib/device_buffer';
import {enums, native} from '../lib/native';
import type {AnyLossArgs, LossName, LossResult} from '../lib/types';
import {normalize} from '../lib/validate';

/** The spec's device value of the emulation; fails when the addon lacks the hooks. */
export function emulatedCudaDevice(): number {
  if (!native().testHooks) {
    throw new Error('this segloss.node was built without the test hooks: rebuild with ' +
                    '`npx cmake-js compile --CDSEGLOSS_TEST_HOOKS=ON` (a checkout\'s npm install does)');
  }
  return enums().device['cuda-emulated'];
}

/** runLoss with the CUDA kernels run through the emulation. */
export function runLossEmulated(name: LossName, args: AnyLossArgs): LossResult {
  const n = normalize(name, args);
  const r = native().compute({...n.spec, device: emulatedCudaDevice()}, n.gradient, n.gradScale, n.perSample, false);
  const out: LossResult = {loss: r.loss};
  if (n.spec.reduction === enums().reduction.none) out.losses = r.losses;
  if (n.gradient) out.gradient = n.gradient;
  return out;
}

/** DeviceBuffers in the emulation's "device memory" (host memory). */
export const emulated = {
  alloc: (length: number, dtype: DeviceDType) => DeviceBuffer._alloc(emulatedCudaDevice(), length, dtype),
  upload: (data: DeviceTypedArray) => DeviceBuffer._upload(emulatedCudaDevice(), data),
  wrap: (pointer: bigint, length: number, dtype: DeviceDType) =>
    DeviceBuffer._wrap(emulatedCudaDevice(), pointer, length, dtype),
};
