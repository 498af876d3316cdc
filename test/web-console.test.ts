// The web console in a real browser: playwright-core driving Debian's chromium against a real
// `vessel host --listen` and a real VM. A tenant logs in, gets the API's own sentence for a bad
// create, creates a VM, watches it boot in the xterm.js console, types a command and reads its
// output, sees the live graphs fill, caps its CPU, keeps its console across a host restart,
// snapshots the VM and restores it (a marker in the guest comes back), reads its usage and
// deletes the VM; a second tenant sees none of it; the page keeps no token (an HttpOnly session
// cookie, ended by a replaced token and by logout); a wrong token is refused;
// the list works on a narrow screen and from the keyboard. Screenshots go to test-results/screenshots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

import { ensureDefaultImage } from '../images/build-image.js';
import { BOOT_MS, freePort, REPO_ROOT, TEST_MS, type VesselProcess } from './vessel-cli.js';
import { removeStateDir, shortStateDir, startHost, until } from './host-cli.js';

const CHROMIUM = process.env['VESSEL_CHROMIUM'] ?? '/usr/bin/chromium';
const SHOTS = path.join(REPO_ROOT, 'test-results', 'screenshots');

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function terminalText(page: Page): Promise<string> {
  return page.locator('.xterm-rows').innerText();
}

/**
 * Types `text` into the page's console once and waits until `answer` shows. (It used to type
 * again every 20 s: the prompt was held back until the next input after a snapshot restore with
 * a thread per hart, whose interrupt wires lost the pending UART interrupt, and a resumed VM's
 * hart threads never ran again. Both are fixed, and typing once must be enough.)
 */
async function typeAndWait(page: Page, text: string, answer: RegExp, ms = 90_000): Promise<void> {
  await page.locator('.term').click();
  await page.keyboard.type(text);
  await until(`"${answer.source}" in the console`, async () => (answer.test(await terminalText(page)) ? true : undefined), ms, 300);
}

test('web console: log in, create, boot, type, graphs, reconnect, usage, delete; tenants kept apart', { timeout: TEST_MS }, async (t) => {
  assert.ok(fs.existsSync(CHROMIUM), `no chromium at ${CHROMIUM}: test/setup.sh installs Debian's chromium package (apt-get install chromium)`);
  assert.ok(fs.existsSync(path.join(REPO_ROOT, 'dist', 'web', 'index.html')), 'the web console is not built: npm run build');
  await ensureDefaultImage({ quiet: true });
  fs.mkdirSync(SHOTS, { recursive: true });
  process.env['VESSEL_METER_INTERVAL_MS'] = '5000'; // usage rows every 5 s, not 30: the usage page shows the VM sooner
  const dir = shortStateDir('vw-');
  const port = await freePort();
  let host: VesselProcess = await startHost(dir, ['--listen', `127.0.0.1:${port}`]);
  const base = `http://127.0.0.1:${port}`;
  let browser: Browser | null = null;
  const pages: Page[] = [];
  t.after(async () => {
    // The last state of every page, for a failure's diagnosis.
    for (const [i, p] of pages.entries()) await p.screenshot({ path: path.join(SHOTS, `zz-last-${i}.png`), fullPage: true }).catch(() => undefined);
    await browser?.close();
    host.kill();
    removeStateDir(dir);
  });
  const adminUrl = /API over HTTP at (http:\/\/\S+)/.exec(host.stdout)?.[1] as string;
  const admin = new URL(adminUrl).searchParams.get('token') as string;
  const call = async (method: string, p: string, token: string, body?: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(base + p, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    assert.ok(res.ok, `${method} ${p}: ${res.status} ${await res.clone().text()}`);
    return res.status === 204 ? {} : await res.json() as Record<string, unknown>;
  };
  const acme = (await call('POST', '/tenants', admin, { name: 'acme', quota: { vcpus: 2, memory_mib: 512 } })).token as string;
  const beta = (await call('POST', '/tenants', admin, { name: 'beta' })).token as string;

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const errors: string[] = [];
  const newPage = async (width = 1280): Promise<Page> => {
    const ctx = await (browser as Browser).newContext({ viewport: { width, height: 900 } });
    const page = await ctx.newPage();
    pages.push(page);
    page.on('pageerror', (e) => errors.push(e.message));
    return page;
  };

  // A wrong token: refused with the API's sentence.
  const stranger = await newPage();
  await stranger.goto(base + '/');
  await stranger.getByLabel('Token').fill('vt_wrong');
  await stranger.getByRole('button', { name: 'Log in' }).click();
  await stranger.getByRole('alert').filter({ hasText: 'The token is not valid' }).waitFor();
  await shot(stranger, '01-wrong-token');

  // acme logs in with the form, and meets the API's own sentences in the create dialog.
  const page = await newPage();
  await page.goto(base + '/');
  await page.getByLabel('Token').fill(acme);
  await page.keyboard.press('Enter');
  await page.getByText('tenant acme').waitFor();
  await page.getByText('No VMs yet').waitFor();
  await page.getByRole('button', { name: 'Create VM' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Name').fill('bad name!');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await dialog.getByRole('alert').filter({ hasText: /"bad name!", which is not valid: 1 to 63 letters/ }).waitFor();
  await dialog.getByLabel('Name').fill('web1');
  await dialog.getByLabel('vCPUs', { exact: true }).fill('3');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await dialog.getByRole('alert').filter({ hasText: 'Tenant "acme" is over the vCPU quota of 2 vCPUs' }).waitFor();
  await shot(page, '02-create-over-quota');
  await dialog.getByLabel('vCPUs', { exact: true }).fill('1');
  await dialog.getByLabel('vCPUs maximum (while it runs)').fill('2');
  await dialog.getByLabel('Memory, MiB (maximum)').fill('128');
  await dialog.getByLabel('Image').selectOption('initramfs');
  await dialog.getByLabel('Network').selectOption('none');
  await dialog.getByRole('button', { name: 'Create' }).click();

  // The VM's page: it boots in the console; typing reaches the shell.
  await page.getByRole('heading', { name: /web1/ }).waitFor();
  await page.locator('.facts').getByText('1 (at most 2 while it runs)').waitFor();
  await until('the shell in the console', async () => /~ #|Enter 'help' for a list of built-in commands/.test(await terminalText(page)) || undefined, BOOT_MS, 500);
  await typeAndWait(page, 'echo web-$((6*7))\n', /^web-42\r?$/m);
  // The graphs fill from the stats stream.
  const memGraph = page.locator('figure', { hasText: 'Memory' }).getByRole('img');
  await until('the memory graph', async () => /target 128 MiB/.test(await memGraph.getAttribute('aria-label') ?? '') || undefined, 30_000, 500);
  const cpuGraph = page.locator('figure', { hasText: 'CPU' }).getByRole('img');
  assert.match(await cpuGraph.getAttribute('aria-label') ?? '', /of one core \d/);
  // The balloon as the host's memory policy sees it (GET /vms/{vm}/memory: its driver's state, a back-off).
  await until('the balloon\'s state on the page', async () => {
    const m = await call('GET', '/vms/web1/memory', acme) as { balloon: string | null };
    return (m.balloon !== null && (await page.getByTestId('balloon').innerText().catch(() => '')).startsWith(m.balloon)) || undefined;
  }, 15_000, 500);
  // A change that applies at once: a CPU cap.
  await page.getByLabel('CPU cap, % of a core (0 = none)').fill('50');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByText('cap 50 % of a core').waitFor();
  // A page opened now draws the minutes before it: the host keeps the VM's recent stats.
  await page.reload();
  const points = page.locator('figure', { hasText: 'Memory' });
  await until('the graphs\' history after a reload', async () => Number(await points.getAttribute('data-points')) >= 5 || undefined, 3000, 100);
  await page.getByRole('heading', { name: 'Events' }).waitFor();
  await page.locator('.events').getByText(/VM process \d+ started/).waitFor();
  await shot(page, '03-vm-page');
  await page.setViewportSize({ width: 390, height: 800 });
  await page.waitForTimeout(300);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'the VM page fits 390 px');
  await shot(page, '03-vm-page-narrow');
  await page.setViewportSize({ width: 1280, height: 900 });

  // The host restarts under the open page: the console reconnects and typing works again.
  host.child.kill('SIGTERM');
  await host.waitExit(30_000);
  await page.getByTestId('console-status').filter({ hasText: 'reconnecting' }).waitFor({ timeout: 15_000 });
  host = await startHost(dir, ['--listen', `127.0.0.1:${port}`]);
  await page.getByTestId('console-status').filter({ hasText: /^connected/ }).waitFor({ timeout: 30_000 });
  await page.locator('.term').click();
  await page.keyboard.type('echo again-$((7*6))\n');
  await until('output after the reconnect', async () => /^again-42$/m.test(await terminalText(page)) || undefined, 60_000, 300);

  // beta sees nothing of acme's: not in its list, and the VM's page is "no such VM".
  const other = await newPage();
  await other.goto(`${base}/?token=${beta}`);
  await other.getByText('tenant beta').waitFor();
  await other.getByText('No VMs yet').waitFor();
  assert.equal(new URL(other.url()).searchParams.get('token'), null, 'the token leaves the address bar');
  // The page holds no token: it was exchanged for an HttpOnly, SameSite=Strict session cookie that expires.
  const session = (await other.context().cookies()).find((c) => c.name === 'vessel_session');
  assert.ok(session, 'a session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.ok(session.expires * 1000 > Date.now() + 11 * 3600_000 && session.expires * 1000 < Date.now() + 12 * 3600_000 + 60_000, `expires in 12 h: ${session.expires}`);
  const visible = await other.evaluate(() => `${document.cookie} ${JSON.stringify({ ...localStorage })} ${JSON.stringify({ ...sessionStorage })}`);
  assert.ok(!visible.includes(beta) && !visible.includes(session.value), `no token or session where a script can read it: ${visible}`);
  assert.equal((await fetch(`${base}/vms`, { headers: { Cookie: `vessel_session=${session.value}` } })).status, 200, 'the API takes the cookie');
  await other.goto(`${base}/#/vms/web1`);
  await other.getByRole('alert').filter({ hasText: 'No VM named "web1"' }).waitFor();
  await shot(other, '04-other-tenant');
  // beta's token is replaced while its page is open: the page goes back to the login and says why.
  const betaNow = (await call('POST', '/tenants/beta/token', admin)).token as string;
  await other.getByRole('alert').filter({ hasText: 'Your session is not valid any more: its token was replaced' }).filter({ hasText: 'Log in again' }).waitFor();
  await other.getByLabel('Token').waitFor();
  assert.equal((await fetch(`${base}/vms`, { headers: { Cookie: `vessel_session=${session.value}` } })).status, 401, 'the session ended with its token');

  // The admin sees it, with its tenant; on a narrow screen the list fits.
  const adm = await newPage(390);
  await adm.goto(adminUrl);
  await adm.locator('tr[data-vm="web1"]').getByText('acme').waitFor();
  assert.ok(await adm.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no sideways scrolling at 390 px');
  await shot(adm, '05-admin-narrow');
  // The keyboard: Tab reaches "Create VM", Enter opens the dialog, Escape closes it.
  for (let i = 0; i < 12; i++) {
    await adm.keyboard.press('Tab');
    if (await adm.evaluate(() => document.activeElement?.textContent) === 'Create VM') break;
  }
  await adm.keyboard.press('Enter');
  await adm.getByRole('dialog').waitFor();
  await adm.keyboard.press('Escape');
  await adm.getByRole('dialog').waitFor({ state: 'detached' });

  // The host's page: each running VM's share, the memory policy's decisions.
  await adm.setViewportSize({ width: 1280, height: 900 });
  await adm.goto(`${base}/#/host`);
  await adm.getByRole('heading', { name: 'Share of the host' }).waitFor();
  await adm.locator('table').getByRole('link', { name: 'web1' }).waitFor();
  await adm.getByRole('heading', { name: 'Memory policy: recent decisions' }).waitFor();
  await shot(adm, '06-host');

  // Every writable disk can be grown from the VM's page (a stopped VM: its image files alone).
  const disks = [0, 1].map((i) => path.join(dir, `disk${i}.img`));
  for (const d of disks) fs.writeFileSync(d, Buffer.alloc(8 << 20));
  const kernel = path.join(dir, 'Image');
  fs.writeFileSync(kernel, 'never booted');
  await call('POST', '/vms', admin, { name: 'disky', kernel, disks: disks.map((p) => ({ path: p })), nets: ['none'], start: false });
  await adm.goto(`${base}/#/vms/disky`);
  await adm.getByLabel('Disk vdb, MiB (grow only)').fill('16');
  await adm.getByRole('button', { name: 'Apply' }).click();
  await adm.getByRole('status').filter({ hasText: 'Applied.' }).waitFor();
  assert.deepEqual(disks.map((d) => fs.statSync(d).size), [8 << 20, 16 << 20], 'vdb grew, vda did not');
  await call('DELETE', '/vms/disky', admin);

  // Tenants, for the admin: acme's use against its quotas; a new tenant and its token, shown once; delete.
  await adm.goto(`${base}/#/tenants`);
  await adm.locator('tr[data-tenant="acme"]').getByText('1 / 2').waitFor();
  await adm.getByRole('button', { name: 'Create tenant' }).click();
  await adm.getByRole('dialog').getByLabel('Name').fill('Gamma!');
  await adm.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
  await adm.getByRole('dialog').getByRole('alert').filter({ hasText: 'which is not valid' }).waitFor();
  await adm.getByRole('dialog').getByLabel('Name').fill('gamma');
  await adm.getByRole('dialog').getByLabel('VMs').fill('1');
  await adm.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
  const gamma = (await adm.getByTestId('new-token').innerText()).trim();
  assert.match(gamma, /^vt_/);
  assert.equal((await fetch(`${base}/vms`, { headers: { Authorization: `Bearer ${gamma}` } })).status, 200, 'the token shown works');
  await adm.getByRole('button', { name: 'Done' }).click();
  await adm.locator('tr[data-tenant="gamma"]').getByText('0 / 1').waitFor();
  await shot(adm, '06-tenants');
  await adm.getByRole('button', { name: 'delete gamma' }).click();
  await adm.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await adm.locator('tr[data-tenant="gamma"]').waitFor({ state: 'detached' });
  assert.equal((await fetch(`${base}/vms`, { headers: { Authorization: `Bearer ${gamma}` } })).status, 401, 'a deleted tenant\'s token stops working');
  // Logging out ends the admin's session: its cookie no longer opens the API.
  const admSession = (await adm.context().cookies()).find((c) => c.name === 'vessel_session')?.value as string;
  await adm.getByRole('button', { name: 'Log out' }).click();
  await adm.getByRole('textbox', { name: 'Token' }).waitFor();
  assert.equal(await adm.evaluate(() => fetch('/vms').then((r) => r.status)), 401);
  assert.equal((await fetch(`${base}/vms`, { headers: { Cookie: `vessel_session=${admSession}` } })).status, 401, 'the logged-out session is gone on the host');

  // Usage: acme's VM is on its bill.
  await page.goto(`${base}/#/usage`);
  await until('web1 on the usage page', async () => {
    await page.reload();
    return (await page.locator('main').innerText().catch(() => '')).includes('web1') || undefined;
  }, 60_000, 2000);
  await page.getByText('Billed:').waitFor();
  await shot(page, '07-usage');

  // Snapshots from the VM's page: a marker in the guest, a snapshot, the marker changed, a restore
  // after a confirmation, and the marker reads as it was. A snapshot counts against the tenant's
  // disk quota (403 with the quota's sentence); another tenant's VM has no snapshots to show (404).
  const web1Id = (await call('GET', '/vms/web1', acme)).id as string;
  await page.goto(`${base}/#/vms/web1`);
  await typeAndWait(page, 'echo one > /marker; echo marked-$((6*7))\n', /^marked-42\r?$/m);
  await call('PATCH', '/tenants/acme', admin, { quota: { disk_gib: 0.01 } });
  await page.getByLabel('Snapshot name (optional)').fill('before');
  await page.getByRole('button', { name: 'Take snapshot' }).click();
  await page.getByRole('alert').filter({ hasText: /Tenant "acme" is over the disk quota of 0\.01 GiB .*a snapshot of VM "web1"/ }).waitFor();
  await call('PATCH', '/tenants/acme', admin, { quota: { disk_gib: null } });
  await page.getByRole('button', { name: 'Take snapshot' }).click();
  await page.locator('tr[data-snapshot="before"]').waitFor({ timeout: 120_000 });
  const snaps = await call('GET', `/vms/${web1Id}/snapshots`, acme) as unknown as { name: string; vm_state: string; size_bytes: number }[];
  assert.deepEqual(snaps.map((x) => [x.name, x.vm_state]), [['before', 'running']]);
  assert.ok(snaps[0].size_bytes > 0 && snaps[0].size_bytes <= 130 * 1024 * 1024, `the snapshot holds ${snaps[0].size_bytes} bytes (RAM is 128 MiB, sparse)`);
  assert.equal((await fetch(`${base}/vms/${web1Id}/snapshots`, { headers: { Authorization: `Bearer ${betaNow}` } })).status, 404, 'another tenant\'s VM: no such VM');
  await typeAndWait(page, 'echo two > /marker; echo changed-$((6*7))\n', /^changed-42\r?$/m);
  await shot(page, '07-snapshot');
  await page.getByRole('button', { name: 'restore before' }).click();
  await page.getByRole('dialog').getByText('What it did since is lost').waitFor();
  const restoreStart = Date.now();
  await page.getByRole('dialog').getByRole('button', { name: 'Restore' }).click();
  await page.getByRole('dialog').waitFor({ state: 'detached', timeout: 120_000 });
  const restoreMs = Date.now() - restoreStart;
  await typeAndWait(page, 'echo marker-$(cat /marker)\n', /^marker-(one|two)\r?$/m);
  assert.match(await terminalText(page), /^marker-one\r?$/m, 'the marker is back as it was at the snapshot');
  assert.doesNotMatch(await terminalText(page), /^marker-two\r?$/m);
  t.diagnostic(`snapshot restore took ${restoreMs} ms`);

  // Delete from the list, after a confirmation.
  await page.goto(`${base}/#/`);
  await page.getByRole('button', { name: 'stop web1' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Stop' }).click();
  await page.getByRole('button', { name: 'delete web1' }).waitFor();
  // A stopped VM's vCPUs: past the tenant's quota refused with the API's sentence, within it applied.
  await page.goto(`${base}/#/vms/web1`);
  await page.getByLabel('vCPUs', { exact: true }).fill('3');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByRole('alert').filter({ hasText: 'Tenant "acme" is over the vCPU quota of 2 vCPUs' }).waitFor();
  await page.getByLabel('vCPUs', { exact: true }).fill('2');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByRole('status').filter({ hasText: 'Applied.' }).waitFor();
  await page.locator('.facts').getByText('2', { exact: true }).first().waitFor();
  await page.goto(`${base}/#/`);
  await page.getByRole('button', { name: 'delete web1' }).click();
  await page.getByRole('dialog').getByText('cannot be undone').waitFor();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.getByText('No VMs yet').waitFor();
  await shot(page, '08-deleted');
  assert.deepEqual(errors, [], 'no script errors in the pages');
});
