// The part of fs-ext (https://github.com/baudehlo/node-fs-ext) Vessel uses: POSIX record locks.
// Only the asynchronous fcntl builds the `struct flock` for F_SETLK (a whole-file lock of type
// `arg`); fs-ext 2.1's fcntlSync passes `arg` where the kernel expects a pointer (EFAULT).
declare module 'fs-ext' {
  export function fcntl(fd: number, cmd: 'setlk' | 'getlk' | 'setlkw', arg: number, callback: (err: NodeJS.ErrnoException | null, result?: number) => void): void;
  /** BSD flock: 'ex', 'sh', 'un', with 'nb' for no waiting (e.g. 'exnb'); throws EAGAIN when held. */
  export function flockSync(fd: number, flags: 'ex' | 'sh' | 'un' | 'exnb' | 'shnb'): void;
  export const constants: {
    readonly F_RDLCK: number;
    readonly F_WRLCK: number;
    readonly F_UNLCK: number;
  };
}
