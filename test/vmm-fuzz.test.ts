// Property: whatever JSON (or non-JSON) a client sends to any route of the VMM API, the real
// `vessel vmm` process answers with JSON — 200 or 204, or 400 with a fault_message — and keeps
// running. Bodies are random JSON values and objects built from the route's own field names with
// random values, so both the schema checks and the handlers behind them get exercised.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { ApiSpec, type JsonSchema } from '../src/vmm/api/spec.js';
import { api, startVmm, tempDir } from './vmm-client.js';

const spec = new ApiSpec();

/** The property names a route's body schema knows (following one $ref), to build near-valid bodies. */
function fieldNames(schema: JsonSchema | undefined): string[] {
  if (!schema) return [];
  const resolved = schema.$ref ? spec.doc.components.schemas[schema.$ref.split('/').pop() as string] : schema;
  return Object.keys(resolved?.properties ?? {});
}

const routes = spec.operations.map((op) => {
  const item = spec.doc.paths[op.path];
  const bodySchema = item[op.method]?.requestBody?.content['application/json'].schema;
  return { op, fields: fieldNames(bodySchema) };
});

const idLike = fc.oneof(fc.constantFrom('rootfs', 'eth0', 'a', '_1'), fc.string({ maxLength: 12 }));
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('Paused', 'Resumed', 'InstanceStart', 'FlushMetrics', 'SendCtrlAltDel', 'Info', 'stdio', 'pty', 'unix:c.sock', 'file:out.txt', '.', '/', 'x.log', '06:00:AC:10:00:02', 'tap0'),
  fc.integer({ min: -2, max: 4096 }),
  fc.boolean(),
);

const request = fc.record({
  route: fc.constantFrom(...routes),
  id: idLike,
  body: fc.oneof(
    fc.constant<unknown>(undefined),
    fc.jsonValue({ maxDepth: 3 }),
    fc.string({ maxLength: 40 }).map((s) => ({ raw: s })),
  ),
  fieldValues: fc.array(fc.tuple(fc.nat(), value), { maxLength: 5 }),
  extraField: fc.option(fc.string({ minLength: 1, maxLength: 8 }), { freq: 4 }),
});

test('vmm API fuzzing: random bodies on every route get a JSON 200/204/400 answer and never stop the VMM', async (t) => {
  const dir = tempDir(t, 'vessel-vmm-fuzz-');
  // The working directory is the temp dir: paths the fuzzer makes up (log files, ...) land there.
  const { vmm, sock } = await startVmm(dir);
  t.after(() => vmm.kill());
  const seen = new Map<number, number>();
  await fc.assert(fc.asyncProperty(request, async ({ route, id, body, fieldValues, extraField }) => {
    let sent: unknown = body;
    // Half the time: an object of the route's own fields (what a slightly wrong client sends).
    if (route.fields.length && fieldValues.length) {
      const obj: Record<string, unknown> = {};
      for (const [i, v] of fieldValues) obj[route.fields[i % route.fields.length]] = v;
      if (extraField !== null) obj[extraField] = 1;
      sent = obj;
    }
    if (sent !== undefined && typeof sent === 'object' && sent !== null && 'raw' in sent) sent = (sent as { raw: string }).raw;
    const url = route.op.path.replace(/\{\w+\}/g, () => encodeURIComponent(id) || 'x');
    const method = route.op.method.toUpperCase();
    const r = await api(sock, method, url, sent === undefined ? undefined : typeof sent === 'string' ? sent : JSON.stringify(sent));
    seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
    assert.ok([200, 204, 400].includes(r.status), `${method} ${url} ${JSON.stringify(sent)} -> ${r.status} ${r.text}`);
    if (r.status === 400) {
      const msg = (r.body as { fault_message?: unknown }).fault_message;
      assert.equal(typeof msg, 'string', r.text);
      assert.ok((msg as string).length > 0);
    } else if (r.status === 200) {
      assert.match(r.contentType ?? '', /^application\/json/);
    } else {
      assert.equal(r.text, '');
    }
    assert.equal(vmm.exit, null, `the VMM exited after ${method} ${url} ${JSON.stringify(sent)}\n${vmm.describe()}`);
  }), { numRuns: 2000, seed: Number(process.env.VESSEL_FUZZ_SEED ?? Date.now() % 2 ** 31) });
  assert.ok((seen.get(400) ?? 0) > 100, `plenty of refusals (${JSON.stringify([...seen])})`);
  assert.ok((seen.get(204) ?? 0) + (seen.get(200) ?? 0) > 20, `and some accepted requests (${JSON.stringify([...seen])})`);
  t.diagnostic(`answers by status: ${JSON.stringify([...seen])}`);
  const info = await api(sock, 'GET', '/');
  assert.equal(info.status, 200);
  assert.equal(vmm.stderr.includes('internal error'), false, vmm.stderr);
});
