/**
 * A request the VMM cannot carry out as asked (bad values, a missing file, the wrong state);
 * the API answers it with 400 and the message as Firecracker's `fault_message`, and
 * `vessel vmm --config-file` exits with a usage error. The subclasses say which part refused.
 */
export class RequestError extends Error {
  override name = 'RequestError';
}
