/** Errors of the host layer, each mapped to one HTTP status by the host API. */

/** No VM has that name or id (404). */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** The request does not fit the VM's state or another VM's (409): a duplicate name, a VM still starting. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** Something the host needs is missing or broken (503): a VM process that does not answer. */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
}

/** `vessel host` cannot start: a busy state directory, a bad --listen (the CLI exits with 2). */
export class HostStartError extends Error {
  override name = 'HostStartError';
}
