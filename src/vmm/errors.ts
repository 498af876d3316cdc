/**
 * A request the VMM cannot carry out as asked (bad values, a missing file, the wrong state);
 * the API answers it with 400 and the message as Firecracker's `fault_message`, and
 * `vessel vmm --config-file` exits with a usage error. The subclasses say which part refused.
 */
export class RequestError extends Error {
  override name = 'RequestError';
  /** The HTTP status the API answers with: 400, or 409 for a request the guest's state does not allow yet. */
  readonly status: 400 | 409 = 400;
}

/**
 * A VM description that cannot be used: a missing, empty or wrong kernel or initrd, a disk that
 * does not exist or is in use, a bad network or console setting, too little memory. `vessel run`
 * reports it as a usage error (exit code 2), the API as 400, `--config-file` as a usage error
 * naming the file. The message is one sentence naming the file or setting.
 */
export class ConfigError extends RequestError {
  override name = 'ConfigError';
}
