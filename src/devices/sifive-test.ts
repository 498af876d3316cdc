/**
 * SiFive test finisher ("sifive,test0", also the syscon behind syscon-poweroff and
 * syscon-reboot on QEMU virt). A write to offset 0 whose low 16 bits hold a command:
 *   0x5555             pass: power off with exit code 0
 *   0x3333 | code<<16  fail: power off with exit code `code` (QEMU exits with `code` as
 *                      given, so a fail with code 0 also ends with 0)
 *   0x7777             reset
 * Other values, other offsets and reads do nothing (reads return 0).
 */
import type { AccessWidth, MmioDevice } from './mmio.js';

export enum TestCommand {
  Fail = 0x3333,
  Pass = 0x5555,
  Reset = 0x7777,
}

export class SifiveTest implements MmioDevice {
  readonly name = 'sifive_test';
  readonly size = 0x1000;

  constructor(
    private readonly onPowerOff: (code: number) => void,
    private readonly onReset: () => void,
  ) {}

  read(_offset: number, _width: AccessWidth): number {
    return 0;
  }

  /** QEMU accepts 2- and 4-byte writes; a 2-byte fail carries code 0. */
  write(offset: number, width: AccessWidth, value: number): void {
    if (offset !== 0 || width === 1) return;
    switch (value & 0xffff) {
      case TestCommand.Pass:
        this.onPowerOff(0);
        break;
      case TestCommand.Fail:
        this.onPowerOff(width === 4 ? value >>> 16 : 0);
        break;
      case TestCommand.Reset:
        this.onReset();
        break;
    }
  }
}
