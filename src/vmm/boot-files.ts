/** The kernel and initrd files of a VM: checked before anything starts, read when the board is built. */
import { readFileSync, statSync, type Stats } from 'node:fs';
import { ConfigError } from './errors.js';

/** earlycon=sbi prints the first boot messages through the SBI debug console, before the UART driver is up. */
export const DEFAULT_APPEND = 'console=ttyS0 earlycon=sbi';

/** Checks that a kernel or initrd file exists, is not a directory and is not empty; throws ConfigError. */
export function checkBootFile(path: string, what: string): void {
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ConfigError(`${what} "${path}" does not exist`);
    throw new ConfigError(`${what} "${path}" cannot be read: ${(e as Error).message}`);
  }
  if (stat.isDirectory()) throw new ConfigError(`${what} "${path}" is a directory, not a file`);
  if (stat.isFile() && stat.size === 0) throw new ConfigError(`${what} "${path}" is empty`);
}

/** Reads a kernel or initrd file after checkBootFile; throws ConfigError. */
export function readBootFile(path: string, what: string): Uint8Array {
  checkBootFile(path, what);
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw new ConfigError(`${what} "${path}" cannot be read: ${(e as Error).message}`);
  }
  if (data.length === 0) throw new ConfigError(`${what} "${path}" is empty`);
  return data;
}
