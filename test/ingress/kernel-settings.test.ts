import { describe, expect, it } from 'vitest';
import { notsentLowatWarning } from '../../src/ingress/kernel-settings.js';

describe('notsentLowatWarning', () => {
  it('warns when the kernel takes any amount of unsent data per socket (the Linux default)', () => {
    expect(notsentLowatWarning('4294967295\n')).toMatch(/tcp_notsent_lowat is 4294967295: .*set it to 131072/);
  });

  it('is quiet when it is set, or cannot be read (not Linux)', () => {
    expect(notsentLowatWarning('131072\n')).toBeNull();
    expect(notsentLowatWarning('16384')).toBeNull();
    expect(notsentLowatWarning(null)).toBeNull();
  });
});
