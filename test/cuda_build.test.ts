/**
 * How the addon is linked: the CUDA runtime is static (STYLE.md rule 8), so
 * the addon needs no libcudart and loads on machines without a GPU driver;
 * the backend then reports why CUDA is unavailable (test/threads.test.ts).
 */
import {execFileSync} from 'child_process';
import * as fs from 'fs';

import * as api from '../lib';
import {addonFile} from '../lib/native';

const addon = addonFile();

(process.platform === 'linux' ? test : test.skip)('ldd: the addon links no CUDA library dynamically', () => {
  expect(fs.existsSync(addon)).toBe(true);
  const deps = execFileSync('ldd', [addon], {encoding: 'utf8'});
  expect(deps).not.toMatch(/libcudart|libcuda\.so|libcublas|libnvrtc/);
  expect(deps).toMatch(/libc\.so/);
});

test('a CUDA build carries the kernels; the addon loaded all the same', () => {
  const cuda = api.backends().find((b) => b.name === 'cuda')!;
  if (!cuda.compiled) {
    // built without nvcc: allowed, except where the build was meant to have CUDA
    expect(process.env.SEGLOSS_EXPECT_CUDA_COMPILED).not.toBe('1');
    return;
  }
  const bytes = fs.readFileSync(addon);
  // the fat binary's kernels (mangled names of segloss::cuda::reduce_kernel)
  expect(bytes.includes(Buffer.from('_ZN7segloss4cuda13reduce_kernel'))).toBe(true);
});
