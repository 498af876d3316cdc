/**
 * The API's OpenAPI document (openapi.yaml, next to this file's source) as the single source of
 * truth for routes and request validation: every operation in it becomes a route, and its
 * request body and path parameters are checked with ajv against the document's schemas. Errors
 * are turned into one precise sentence for Firecracker's `fault_message`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';

export type HttpMethod = 'get' | 'put' | 'patch' | 'post' | 'delete';
const METHODS: HttpMethod[] = ['get', 'put', 'patch', 'post', 'delete'];

/** A JSON Schema object as written in the document (only what this module reads is typed). */
export interface JsonSchema {
  $ref?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  [keyword: string]: unknown;
}

interface ParameterObject { name: string; in: string; required?: boolean; schema: JsonSchema }
interface OperationObject {
  operationId: string;
  parameters?: (ParameterObject | { $ref: string })[];
  requestBody?: { required?: boolean; content: { 'application/json': { schema: JsonSchema } } };
}
type PathItem = Partial<Record<HttpMethod, OperationObject>> & { parameters?: (ParameterObject | { $ref: string })[] };
export interface OpenApiDocument {
  info: { version: string };
  paths: Record<string, PathItem>;
  components: { schemas: Record<string, JsonSchema>; parameters: Record<string, ParameterObject> };
}

/** Checks a value against one schema; `errors` describes the last failure. */
export interface Validator {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

/** One route of the API with its validators. */
export interface ApiOperation {
  id: string;
  method: HttpMethod;
  /** The OpenAPI path, e.g. "/drives/{drive_id}". */
  path: string;
  /** Path parameters in order, with their validators. */
  params: { name: string; validate: Validator }[];
  /** Validates the JSON body; absent for operations without one. */
  body?: { required: boolean; validate: Validator };
}

/**
 * Where the document is: the source tree, next to this module's source. The compiled module
 * runs from dist/src/vmm/api/, and tsc does not copy YAML files.
 */
export const OPENAPI_PATH = fileURLToPath(new URL('../../../../src/vmm/api/openapi.yaml', import.meta.url));

export function loadOpenApi(path = OPENAPI_PATH): OpenApiDocument {
  return parseYaml(readFileSync(path, 'utf8')) as OpenApiDocument;
}

const SCHEMA_REF = '#/components/schemas/';
const PARAM_REF = '#/components/parameters/';

/** Rewrites the document's `#/components/schemas/X` references to ajv schema ids `X`. */
function localRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(localRefs);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k === '$ref' && typeof v === 'string' && v.startsWith(SCHEMA_REF) ? v.slice(SCHEMA_REF.length) : localRefs(v);
  }
  return out;
}

export class ApiSpec {
  readonly operations: ApiOperation[] = [];
  private readonly ajv: Ajv;
  private readonly uncompiled: (() => void)[] = [];

  constructor(readonly doc: OpenApiDocument = loadOpenApi()) {
    // No coercion, no defaults, no removal: a request is valid as sent or it is refused.
    // validateSchema is off because checking the document against JSON Schema's meta-schema
    // costs ~60 ms of every start; strict compilation still refuses unknown keywords, and
    // test/vmm-api.test.ts compiles every validator.
    this.ajv = new Ajv({ allErrors: false, verbose: true, strict: true, validateSchema: false, coerceTypes: false, useDefaults: false, removeAdditional: false });
    for (const [name, schema] of Object.entries(doc.components.schemas)) this.ajv.addSchema(localRefs(schema) as object, name);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) {
        const op = item[method];
        if (op) this.operations.push(this.compile(path, method, op, item.parameters ?? []));
      }
    }
  }

  private param(p: ParameterObject | { $ref: string }): ParameterObject {
    if ('$ref' in p) {
      const found = this.doc.components.parameters[p.$ref.slice(PARAM_REF.length)];
      if (!found) throw new Error(`openapi.yaml: unknown parameter ${p.$ref}`);
      return found;
    }
    return p;
  }

  private compile(path: string, method: HttpMethod, op: OperationObject, shared: (ParameterObject | { $ref: string })[]): ApiOperation {
    const params = [...shared, ...(op.parameters ?? [])].map((p) => this.param(p)).filter((p) => p.in === 'path')
      .map((p) => ({ name: p.name, validate: this.lazy(p.schema) }));
    const bodySchema = op.requestBody?.content['application/json'].schema;
    const body = bodySchema ? { required: op.requestBody?.required ?? false, validate: this.lazy(bodySchema) } : undefined;
    return { id: op.operationId, method, path, params, body };
  }

  /**
   * A validator compiled on first use: compiling them all costs more than the rest of the
   * VMM's start (see warmUp()).
   */
  private lazy(schema: JsonSchema): Validator {
    let compiled: ValidateFunction | undefined;
    const compile = (): ValidateFunction => (compiled ??= this.ajv.compile(localRefs(schema) as object));
    this.uncompiled.push(compile);
    const validate: Validator = (data) => {
      const fn = compile();
      const ok = fn(data);
      validate.errors = fn.errors;
      return ok;
    };
    return validate;
  }

  /** Compiles the validators not used yet, one per event-loop turn, once the API is listening. */
  warmUp(): void {
    const next = this.uncompiled.shift();
    if (!next) return;
    next();
    setImmediate(() => this.warmUp());
  }

  /** A validator for one of the document's schemas (e.g. FullVmConfiguration for --config-file). */
  validator(schemaName: string): ValidateFunction {
    const v = this.ajv.getSchema(schemaName);
    if (!v) throw new Error(`openapi.yaml has no schema ${schemaName}`);
    return v;
  }
}

/** `/drives/0/path_on_host` → `drives[0].path_on_host`. */
function fieldName(instancePath: string): string {
  return instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => /^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part, '');
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const TYPE_NAMES: Record<string, string> = { object: 'a JSON object', array: 'an array', string: 'a string', integer: 'an integer', number: 'a number', boolean: 'a boolean (true or false)' };

/**
 * One sentence for the first validation error. `subject` names what was validated, e.g.
 * "the body" or "path parameter drive_id"; fields inside it are named by their JSON path.
 */
export function describeValidationError(errors: ErrorObject[] | null | undefined, subject: string): string {
  const e = errors?.[0];
  if (!e) return `${subject} is invalid`;
  const field = fieldName(e.instancePath);
  const where = field ? `field "${field}"` : subject;
  const inside = field ? ` in "${field}"` : '';
  const parent = e.parentSchema as JsonSchema | undefined;
  switch (e.keyword) {
    case 'required':
      return `missing required field "${(e.params as { missingProperty: string }).missingProperty}"${inside}`;
    case 'additionalProperties': {
      const known = Object.keys(parent?.properties ?? {});
      const name = (e.params as { additionalProperty: string }).additionalProperty;
      return `unknown field "${name}"${inside}` + (known.length ? ` (known fields: ${known.join(', ')})` : ' (no fields are allowed)');
    }
    case 'type': {
      const want = String((e.params as { type: string }).type);
      return `${where} must be ${TYPE_NAMES[want] ?? want}, got ${jsonType(e.data)}`;
    }
    case 'enum':
      return `${where} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}; got ${shown(e.data)}`;
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum': {
      const p = e.params as { comparison: string; limit: number };
      return `${where} must be ${p.comparison} ${p.limit}, got ${shown(e.data)}`;
    }
    case 'multipleOf':
      return `${where} must be a multiple of ${(e.params as { multipleOf: number }).multipleOf}, got ${shown(e.data)}`;
    case 'minLength':
      return (e.params as { limit: number }).limit === 1 ? `${where} must not be empty` : `${where} ${e.message ?? 'is too short'}`;
    case 'maxLength':
      return `${where} is longer than ${(e.params as { limit: number }).limit} characters`;
    case 'maxItems':
      return `${where} has more than ${(e.params as { limit: number }).limit} items`;
    case 'pattern':
      return `${where} is ${shown(e.data)}, which is not valid: ${parent?.description ?? `it must match ${(e.params as { pattern: string }).pattern}`}`;
    default:
      return `${where} ${e.message ?? 'is invalid'}`;
  }
}
