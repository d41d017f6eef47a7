/**
 * segloss: the four losses of Sudre et al. 2017 and their gradients, fused
 * native kernels on typed arrays. See README.md for the option table.
 */
export {generalizedDice, generalizedDiceAsync} from './generalized_dice';
export {dice, diceAsync} from './dice';
export {sensitivitySpecificity, sensitivitySpecificityAsync} from './sensitivity_specificity';
export {weightedCrossEntropy, weightedCrossEntropyAsync} from './weighted_cross_entropy';
export {
  lossStats, lossStatsAsync, mergeStats, lossFromStats, gradientFromStats, gradientFromStatsAsync,
  backends, releaseDeviceMemory, setThreads, getThreads, lossOnDevice, lossOnDeviceAsync,
} from './api';
export type {LossStats, StatsArgs} from './api';
export {DeviceBuffer, isDeviceBuffer} from './device_buffer';
export type {DeviceDType, DeviceTypedArray} from './device_buffer';
export * from './types';
