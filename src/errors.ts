/**
 * The agent's error family. Every error that can reach Trove names the Python
 * class Trove re-raises on its side (`troveClass` in `troveModule`): the
 * oslo.messaging client rebuilds classes from `trove.common.exception` (the only
 * module in Trove's ALLOWED_EXMODS) as `<Class>_Remote`, builtins as the builtin
 * class, anything else as RemoteError. Conversion to the wire happens in exactly
 * one place: src/rpc/failure.ts. Leaf module: imports nothing of ours.
 */

export type TroveModule = 'trove.common.exception' | 'builtins' | 'oslo_messaging.rpc.dispatcher';

export interface AgentErrorOptions extends ErrorOptions {
  /** Safe to retry the same operation later (transient cause). Default false. */
  retryable?: boolean;
}

export class AgentError extends Error {
  /** Stable code for logs and tests. */
  readonly code: string = 'AGENT_ERROR';
  /** Python class name raised again on Trove's side. */
  readonly troveClass: string = 'GuestError';
  readonly troveModule: TroveModule = 'trove.common.exception';
  readonly retryable: boolean;

  constructor(message: string, options: AgentErrorOptions = {}) {
    super(message, options);
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
  }
}

/** oslo.messaging's own dispatcher error: the method does not exist on the endpoint. */
export class NoSuchMethodError extends AgentError {
  override readonly code = 'NO_SUCH_METHOD';
  override readonly troveClass = 'NoSuchMethod';
  override readonly troveModule = 'oslo_messaging.rpc.dispatcher';
  readonly method: string;
  constructor(method: string) {
    super(`Endpoint does not support RPC method ${method}`);
    this.method = method;
  }
}

/** oslo.messaging's dispatcher error for a request newer than our target version. */
export class UnsupportedVersionError extends AgentError {
  override readonly code = 'UNSUPPORTED_VERSION';
  override readonly troveClass = 'UnsupportedVersion';
  override readonly troveModule = 'oslo_messaging.rpc.dispatcher';
  readonly version: string;
  readonly method: string;
  constructor(version: string, method: string) {
    super(`Endpoint does not support RPC version ${version}. Attempted method: ${method}`);
    this.version = version;
    this.method = method;
  }
}

/** A guest API method the loaded datastore does not implement (Trove: DatastoreOperationNotSupported). */
export class OperationNotSupportedError extends AgentError {
  override readonly code = 'OPERATION_NOT_SUPPORTED';
  override readonly troveClass = 'DatastoreOperationNotSupported';
  readonly operation: string;
  readonly datastore: string;
  constructor(operation: string, datastore: string) {
    super(`The '${operation}' operation is not supported for the '${datastore}' datastore.`);
    this.operation = operation;
    this.datastore = datastore;
  }
}

/** Malformed or invalid request arguments (Trove: BadRequest). Never retryable. */
export class BadRequestError extends AgentError {
  override readonly code = 'BAD_REQUEST';
  override readonly troveClass = 'BadRequest';
}

/**
 * Invalid names and values, raised as Python's ValueError as Trove's own models
 * do (trove/common/db/models.py), so callers see the same class.
 */
export class InvalidValueError extends AgentError {
  override readonly code = 'INVALID_VALUE';
  override readonly troveClass = 'ValueError';
  override readonly troveModule = 'builtins';
}

export class UserNotFoundError extends AgentError {
  override readonly code = 'USER_NOT_FOUND';
  override readonly troveClass = 'UserNotFound';
  constructor(user: string) {
    super(`User ${user} cannot be found on the instance.`);
  }
}

export class DatabaseNotFoundError extends AgentError {
  override readonly code = 'DATABASE_NOT_FOUND';
  override readonly troveClass = 'DatabaseNotFound';
  constructor(database: string) {
    super(`Database ${database} cannot be found on the instance.`);
  }
}

/** The request is understood but cannot be carried out in the current state (Trove: UnprocessableEntity). */
export class UnprocessableError extends AgentError {
  override readonly code = 'UNPROCESSABLE';
  override readonly troveClass = 'UnprocessableEntity';
}

/** Anything else that went wrong inside the guest (Trove: GuestError). */
export class GuestError extends AgentError {
  override readonly code = 'GUEST_ERROR';
  override readonly troveClass = 'GuestError';
}

export interface ProcessErrorDetails {
  command: string;
  exitCode?: number | undefined;
  signal?: string | undefined;
  stderrTail?: string | undefined;
}

/** A child process failed: exit code or signal plus the tail of its stderr (already redacted). */
export class ProcessError extends AgentError {
  override readonly code = 'PROCESS_FAILED';
  override readonly troveClass = 'GuestError';
  readonly details: ProcessErrorDetails;
  constructor(message: string, details: ProcessErrorDetails, options?: AgentErrorOptions) {
    super(message, options);
    this.details = details;
  }
}

/** The operation was aborted (agent shutdown, timeout). */
export class AbortedError extends AgentError {
  override readonly code = 'ABORTED';
  override readonly troveClass = 'GuestError';
  constructor(message = 'The operation was aborted', options?: AgentErrorOptions) {
    super(message, { retryable: true, ...options });
  }
}

/** Configuration could not be read or is invalid. Never reaches the wire: the agent exits. */
export class ConfigError extends AgentError {
  override readonly code = 'CONFIG_INVALID';
  readonly where: { file?: string | undefined; section?: string | undefined; option?: string | undefined };
  constructor(
    message: string,
    where: { file?: string | undefined; section?: string | undefined; option?: string | undefined } = {},
  ) {
    super(message);
    this.where = where;
  }
}

/** Python's KeyError, as Trove raises when an encrypting agent receives an unencrypted context. */
export class RemoteKeyError extends AgentError {
  override readonly code = 'KEY_ERROR';
  override readonly troveClass = 'KeyError';
  override readonly troveModule = 'builtins';
}

/** A request whose context or arguments cannot be decrypted with the instance key: rejected, never executed. */
export class UndecryptableError extends AgentError {
  override readonly code = 'UNDECRYPTABLE';
  override readonly troveClass = 'ValueError';
  override readonly troveModule = 'builtins';
}

export interface SwiftErrorDetails {
  method: string;
  /** Container/object path (never the token, never the storage URL's query). */
  path: string;
  /** HTTP status, absent when the request never got an answer. */
  status?: number | undefined;
}

/** A Swift request failed (HTTP status or transport). 5xx and transport errors are retryable. */
export class SwiftError extends AgentError {
  override readonly code = 'SWIFT_ERROR';
  override readonly troveClass = 'GuestError';
  readonly details: SwiftErrorDetails;
  constructor(message: string, details: SwiftErrorDetails, options?: AgentErrorOptions) {
    super(message, { retryable: details.status === undefined || details.status >= 500, ...options });
    this.details = details;
  }
}

/** Keystone refused or could not be reached while the agent looked for Swift. */
export class KeystoneError extends AgentError {
  override readonly code = 'KEYSTONE_ERROR';
  override readonly troveClass = 'GuestError';
}

/** Stored data does not match its checksum (segment md5 vs ETag, or a backup's recorded checksum). */
export class ChecksumMismatchError extends AgentError {
  override readonly code = 'CHECKSUM_MISMATCH';
  override readonly troveClass = 'GuestError';
  readonly expected: string;
  readonly actual: string;
  constructor(what: string, expected: string, actual: string) {
    super(`${what}: checksum mismatch (expected ${expected}, got ${actual})`);
    this.expected = expected;
    this.actual = actual;
  }
}

/** Python's TypeError, for a call whose keyword arguments do not fit the method's signature. */
export class ArgumentTypeError extends AgentError {
  override readonly code = 'TYPE_ERROR';
  override readonly troveClass = 'TypeError';
  override readonly troveModule = 'builtins';
}

/** Python's ValueError for a malformed value the dispatcher reads (e.g. a version string). */
export class ArgumentValueError extends AgentError {
  override readonly code = 'VALUE_ERROR';
  override readonly troveClass = 'ValueError';
  override readonly troveModule = 'builtins';
}

/** A module type with no driver on this guest (Trove: ModuleTypeNotFound). */
export class ModuleTypeNotFoundError extends AgentError {
  override readonly code = 'MODULE_TYPE_NOT_FOUND';
  override readonly troveClass = 'ModuleTypeNotFound';
}

/** A module that cannot be applied here, e.g. made for another datastore (Trove: ModuleInvalid). */
export class ModuleInvalidError extends AgentError {
  override readonly code = 'MODULE_INVALID';
  override readonly troveClass = 'ModuleInvalid';
  constructor(reason: string) {
    super(`The module is invalid: ${reason}`);
  }
}

/** Trove's generic NotFound (e.g. removing a module that was never applied). */
export class NotFoundError extends AgentError {
  override readonly code = 'NOT_FOUND';
  override readonly troveClass = 'NotFound';
}

/** Python's AttributeError, which Trove's module_apply raises for a module without a name or contents. */
export class MissingAttributeError extends AgentError {
  override readonly code = 'ATTRIBUTE_ERROR';
  override readonly troveClass = 'AttributeError';
  override readonly troveModule = 'builtins';
}

/** A replica offered a snapshot or context of another replication strategy (Trove: IncompatibleReplicationStrategy). */
export class IncompatibleReplicationStrategyError extends AgentError {
  override readonly code = 'INCOMPATIBLE_REPLICATION_STRATEGY';
  override readonly troveClass = 'IncompatibleReplicationStrategy';
  constructor(guestStrategy: string, sourceStrategy: string) {
    super(`Instance with replication strategy ${guestStrategy} cannot replicate from instance with replication strategy ${sourceStrategy}.`);
  }
}

/** The replica's volume is smaller than the source's data (Trove: InsufficientSpaceForReplica). */
export class InsufficientSpaceForReplicaError extends AgentError {
  override readonly code = 'INSUFFICIENT_SPACE_FOR_REPLICA';
  override readonly troveClass = 'InsufficientSpaceForReplica';
  constructor(volumeGb: number, datasetGb: number) {
    super(`The target instance has only ${volumeGb}G free, but the replication snapshot contains ${datasetGb}G of data.`);
  }
}
