// Browser test of /test/realtime: the real server binary on a fresh SQLite
// database, Debian's Chromium driven by playwright-core, two people (an
// owner and a viewer) watching the same vault in two browser contexts.
//
// Run through scripts/test-browser, which builds nothing: the caller builds
// the server and the CLI first (cargo build --workspace). Environment:
//   SYNCSCRIPT_BIN       server binary (default target/debug/syncscript)
//   SYNCSCRIPT_CLI_BIN   CLI binary for `add-source` (default
//                        target/debug/syncscript-cli; REST when it is absent)
//   CHROMIUM_PATH        browser (default /usr/bin/chromium)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

import { REPO_ROOT, SERVER_BIN, startServer } from '../../tests/node/server.mjs';

const CLI_BIN = path.resolve(REPO_ROOT, process.env.SYNCSCRIPT_CLI_BIN || 'target/debug/syncscript-cli');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'artifacts', 'browser');
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];
/** Longest wait for any DOM condition or server answer. */
const TIMEOUT_MS = 15_000;
const PASSWORD = 'correct horse battery';

const run = promisify(execFile);

/** Everything the test starts, so that `after` can stop it. */
const ctx = {
  tmp: null,
  server: null,
  baseUrl: null,
  browser: null,
  owner: null,
  viewer: null,
  vaultId: null,
  ownerToken: null,
  pageErrors: [],
};

/** A JSON request to the server; `token` authenticates as a bearer. */
async function rest(method, urlPath, { body, token } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(ctx.baseUrl + urlPath, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new Error(`${method} ${urlPath} → ${response.status} ${text}`);
  }
  return data;
}

/** Owner and viewer accounts and one vault they share. */
async function seed() {
  const people = {
    owner: { email: 'owner@example.test', name: 'Olive Owner' },
    viewer: { email: 'viewer@example.test', name: 'Victor Viewer' },
  };
  for (const person of Object.values(people)) {
    await rest('POST', '/api/auth/signup', { body: { ...person, password: PASSWORD } });
  }
  const { token } = await rest('POST', '/api/auth/login', {
    body: { email: people.owner.email, password: PASSWORD },
  });
  const { vault } = await rest('POST', '/api/vaults', { token, body: { name: 'Browser test vault' } });
  await rest('POST', `/api/vaults/${vault.id}/members`, {
    token,
    body: { email: people.viewer.email, role: 'viewer' },
  });
  ctx.ownerToken = token;
  ctx.vaultId = vault.id;
  return people;
}

/**
 * Adds a source outside the browsers, as the owner: with
 * `syncscript-cli add-source` when that binary is built, else through REST.
 * Returns which one was used.
 */
async function addSourceOutside(title, fileUrl) {
  if (!existsSync(CLI_BIN)) {
    await rest('POST', `/api/vaults/${ctx.vaultId}/sources`, {
      token: ctx.ownerToken,
      body: { title, fileUrl },
    });
    return 'REST (no syncscript-cli binary)';
  }
  const { stdout } = await run(CLI_BIN, [
    '--server', ctx.baseUrl, '--json',
    'add-source', '--vault', ctx.vaultId, '--title', title, '--url', fileUrl,
  ], {
    timeout: TIMEOUT_MS,
    // The token goes through the environment, not the command line, and
    // the CLI's own session store stays in the test's folder.
    env: { ...process.env, SYNCSCRIPT_TOKEN: ctx.ownerToken, SYNCSCRIPT_CONFIG_DIR: ctx.tmp },
  });
  assert.equal(JSON.parse(stdout).source.title, title);
  return 'syncscript-cli add-source';
}

/**
 * A fresh context (its own cookie jar) logged in through the page's form;
 * `prepare(page)` runs before the page is loaded (e.g. to route its socket).
 */
async function openAs(person, viewport, prepare) {
  const context = await ctx.browser.newContext({ viewport });
  const page = await context.newPage();
  if (prepare) await prepare(page);
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (error) => ctx.pageErrors.push(`${person.email}: ${error.message}`));
  // HTTP failures are checked by URL below; every other console error (a
  // script error, a CSP violation) fails the test.
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      ctx.pageErrors.push(`${person.email}: ${message.text()}`);
    }
  });
  page.on('response', (response) => {
    const { pathname } = new URL(response.url());
    const expected = (pathname === '/api/me' && response.status() === 401) || pathname === '/favicon.ico';
    if (response.status() >= 400 && !expected) {
      ctx.pageErrors.push(`${person.email}: ${response.status()} ${response.request().method()} ${pathname}`);
    }
  });
  await page.goto(`${ctx.baseUrl}/test/realtime?vaultId=${ctx.vaultId}`);
  await page.getByLabel('Email', { exact: true }).fill(person.email);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await waitConnected(page);
  return page;
}

async function waitConnected(page) {
  await page.locator('#status[data-state="connected"]', { hasText: 'Connected to vault' }).waitFor();
}

function sourceItem(page, title) {
  return page.locator('#sources li', { hasText: title });
}

async function addSourceInPage(page, title, fileUrl) {
  await page.getByLabel('Title', { exact: true }).fill(title);
  await page.getByLabel('File URL', { exact: true }).fill(fileUrl);
  await page.getByRole('button', { name: 'Add source' }).click();
}

async function screenshots(suffix = '') {
  await mkdir(ARTIFACTS, { recursive: true });
  for (const [name, page] of [['owner', ctx.owner], ['viewer', ctx.viewer]]) {
    if (page && !page.isClosed()) {
      await page.screenshot({ path: path.join(ARTIFACTS, `${name}${suffix}.png`), fullPage: true });
    }
  }
}

before(async () => {
  assert.ok(existsSync(SERVER_BIN), `no server binary at ${SERVER_BIN}: run cargo build -p syncscript first`);
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  ctx.tmp = await mkdtemp(path.join(tmpdir(), 'syncscript-browser-'));
  ctx.server = await startServer({
    databaseUrl: `sqlite://${ctx.tmp}/db.sqlite`,
    env: { SYNCSCRIPT_LOG: 'info,sqlx=warn' },
    patience: TIMEOUT_MS,
  });
  ctx.baseUrl = ctx.server.base;
  ctx.people = await seed();
  ctx.browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
});

after(async () => {
  try {
    if (ctx.browser) await ctx.browser.close();
  } finally {
    if (ctx.server) await ctx.server.stop();
    if (ctx.tmp) await rm(ctx.tmp, { recursive: true, force: true });
  }
});

test('the server serves the official client bundle ahead of the Socket.IO layer', async () => {
  const bundle = await fetch(`${ctx.baseUrl}/socket.io/socket.io.min.js`);
  assert.equal(bundle.status, 200);
  assert.match(bundle.headers.get('content-type'), /^text\/javascript/);
  assert.match(await bundle.text(), /Socket\.IO v4\.8/);
  const etag = bundle.headers.get('etag');
  assert.ok(etag, 'an ETag');
  assert.ok(bundle.headers.get('cache-control'), 'a Cache-Control');
  const revalidated = await fetch(`${ctx.baseUrl}/socket.io/socket.io.js`, { headers: { 'if-none-match': etag } });
  assert.equal(revalidated.status, 200, 'the unminified bundle has its own ETag');
  const notModified = await fetch(`${ctx.baseUrl}/socket.io/socket.io.min.js`, { headers: { 'if-none-match': etag } });
  assert.equal(notModified.status, 304);

  const engine = await fetch(`${ctx.baseUrl}/socket.io/?EIO=4&transport=polling`);
  assert.equal(engine.status, 200);
  assert.match(await engine.text(), /^0\{"sid"/, 'Engine.IO still answers its own paths');

  const page = await fetch(`${ctx.baseUrl}/test/realtime`);
  assert.equal(page.status, 200);
  const csp = page.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
});

test('two people see each other\'s changes live, with refusal and catch-up', async (t) => {
  const { owner, viewer } = ctx.people;
  ctx.owner = await openAs(owner, { width: 1280, height: 900 });
  ctx.viewer = await openAs(viewer, { width: 390, height: 844 });

  await t.test('the page knows each role and who is present', async () => {
    await ctx.owner.locator('#role', { hasText: 'owner' }).waitFor();
    await ctx.viewer.locator('#role', { hasText: 'viewer' }).waitFor();
    for (const page of [ctx.owner, ctx.viewer]) {
      await page.locator('#presence li', { hasText: owner.name }).waitFor();
      await page.locator('#presence li', { hasText: viewer.name }).waitFor();
    }
  });

  await t.test('a source the owner adds in the page appears in the viewer\'s page', async () => {
    await addSourceInPage(ctx.owner, 'Owner paper', 'https://example.org/owner.pdf');
    await ctx.owner.locator('#form-message[data-kind="ok"]', { hasText: 'Added “Owner paper”' }).waitFor();
    await sourceItem(ctx.viewer, 'Owner paper').waitFor();
    await sourceItem(ctx.owner, 'Owner paper').waitFor();
    const row = ctx.viewer.locator('#log-body tr[data-event="source:created"][data-kind="live"]');
    await row.first().waitFor();
    assert.match(await row.first().textContent(), /Olive Owner \(owner\)/);
    assert.match(await row.first().textContent(), /\d+ ms/);
  });

  await t.test('a source added with syncscript-cli appears in both pages', async () => {
    const how = await addSourceOutside('Outside paper', 'https://example.org/outside.pdf');
    t.diagnostic(`added with ${how}`);
    await sourceItem(ctx.owner, 'Outside paper').waitFor();
    await sourceItem(ctx.viewer, 'Outside paper').waitFor();
  });

  await t.test('the viewer\'s add attempt shows the refusal', async () => {
    await addSourceInPage(ctx.viewer, 'Viewer paper', 'https://example.org/viewer.pdf');
    const message = ctx.viewer.locator('#form-message[data-kind="error"]');
    await message.waitFor();
    assert.match(await message.textContent(), /FORBIDDEN.*Insufficient permissions/);
    await ctx.viewer.locator('#log-body tr[data-kind="refused"]', { hasText: 'Insufficient permissions' }).waitFor();
    const viewerSources = await rest('GET', `/api/vaults/${ctx.vaultId}/sources`, { token: ctx.ownerToken });
    assert.ok(!viewerSources.sources.some((s) => s.title === 'Viewer paper'), 'nothing was created');
    assert.equal(await sourceItem(ctx.owner, 'Viewer paper').count(), 0);
  });

  await t.test('the owner edits and deletes in the page; the viewer follows', async () => {
    await ctx.owner.getByRole('button', { name: 'Edit “Outside paper”' }).click();
    await ctx.owner.getByLabel('Title', { exact: true }).fill('Outside paper, revised');
    await ctx.owner.getByRole('button', { name: 'Save changes' }).click();
    await sourceItem(ctx.viewer, 'Outside paper, revised').waitFor();
    await ctx.owner.getByRole('button', { name: 'Delete “Outside paper, revised”' }).click();
    await sourceItem(ctx.viewer, 'Outside paper, revised').waitFor({ state: 'detached' });
    await sourceItem(ctx.owner, 'Outside paper, revised').waitFor({ state: 'detached' });
  });

  await t.test('a viewer that was offline catches up on reconnect', async () => {
    await ctx.viewer.locator('#disconnect-seconds').fill('120');
    await ctx.viewer.getByRole('button', { name: 'Simulate disconnect' }).click();
    // Once the client socket is closed nothing reaches the page, so the
    // change below is certainly one the viewer missed.
    await ctx.viewer.locator('#status[data-state="offline"]', { hasText: 'simulated disconnect' }).waitFor();

    await addSourceInPage(ctx.owner, 'Missed paper', 'https://example.org/missed.pdf');
    await sourceItem(ctx.owner, 'Missed paper').waitFor();
    const ownerSeq = Number(await ctx.owner.locator('#applied-seq').textContent());
    assert.equal(await sourceItem(ctx.viewer, 'Missed paper').count(), 0, 'the viewer is offline');

    await ctx.viewer.getByRole('button', { name: 'Reconnect now' }).click();
    await waitConnected(ctx.viewer);
    await sourceItem(ctx.viewer, 'Missed paper').waitFor();
    await ctx.viewer
      .locator(`#log-body tr[data-event="source:created"][data-seq="${ownerSeq}"][data-kind="catch-up"]`)
      .waitFor();
    await ctx.viewer.locator('#applied-seq', { hasText: String(ownerSeq) }).waitFor();
    await ctx.owner.locator('#presence li', { hasText: viewer.name }).waitFor();
  });

  await t.test('both pages end with the same sources, in the same order', async () => {
    const titles = (page) => page.locator('#sources li .source-text > :first-child').allTextContents();
    assert.deepEqual(await titles(ctx.viewer), await titles(ctx.owner));
    assert.deepEqual(await titles(ctx.owner), ['Owner paper', 'Missed paper']);
  });

  await screenshots();
  assert.deepEqual(ctx.pageErrors, [], 'no script errors, CSP violations or failed requests in the pages');
  for (const page of [ctx.owner, ctx.viewer]) {
    const lost = page.locator('#log-body tr[data-event="vault:join"][data-kind="error"]');
    assert.equal(await lost.count(), 0, 'every join was answered the first time');
  }
});

test('a source command whose ack is lost is sent again with the same opId and applied once', async () => {
  const { owner } = ctx.people;
  // The page's WebSocket goes through Playwright, which forwards every
  // frame both ways, keeps the commands the page sent, and loses the first
  // successful command ack once armed: the server has applied the command,
  // the page never hears so.
  const wire = { armed: false, lost: 0, creates: [] };
  const page = await openAs(owner, { width: 1280, height: 900 }, async (p) => {
    await p.routeWebSocket(/\/socket\.io\//, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        const text = String(message);
        // Socket.IO over Engine.IO: "42<ack id>[name, payload]".
        const command = /^42\d*(\[.*)$/s.exec(text);
        if (command) {
          const [name, payload] = JSON.parse(command[1]);
          if (name === 'source:create') wire.creates.push(payload);
        }
        server.send(message);
      });
      server.onMessage((message) => {
        // An ack: "43<ack id>[{ok, …}]"; the one of a source command.
        const text = String(message);
        if (wire.armed && /^43\d+\[/.test(text) && text.includes('"ok":true') && text.includes('"source":{')) {
          wire.armed = false;
          wire.lost += 1;
          return;
        }
        ws.send(message);
      });
    });
  });
  try {
    wire.armed = true;
    await addSourceInPage(page, 'Retried paper', 'https://example.org/retried.pdf');
    await page.locator('#form-message[data-kind="ok"]', { hasText: 'Added “Retried paper”' })
      .waitFor({ timeout: 3 * TIMEOUT_MS });
    assert.equal(wire.lost, 1, 'the first ack was lost');
    assert.equal(wire.creates.length, 2, 'sent twice');
    const [first, second] = wire.creates;
    assert.match(first.opId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(second, first, 'the same payload, opId included');
    await page.locator('#log-body tr[data-event="source:create"]', { hasText: first.opId }).waitFor();

    const { sources } = await rest('GET', `/api/vaults/${ctx.vaultId}/sources`, { token: ctx.ownerToken });
    assert.equal(sources.filter((s) => s.title === 'Retried paper').length, 1, 'one source');
    const { events } = await rest('GET', `/api/vaults/${ctx.vaultId}/events`, { token: ctx.ownerToken });
    const created = events.filter((e) => e.name === 'source:created' && e.payload.source.title === 'Retried paper');
    assert.equal(created.length, 1, 'one event');
    await sourceItem(page, 'Retried paper').waitFor();
    assert.equal(await sourceItem(page, 'Retried paper').count(), 1);

    // The next change gets a new opId.
    await addSourceInPage(page, 'Next paper', 'https://example.org/next.pdf');
    await page.locator('#form-message[data-kind="ok"]', { hasText: 'Added “Next paper”' }).waitFor();
    assert.equal(wire.creates.length, 3);
    assert.notEqual(wire.creates[2].opId, first.opId);
  } finally {
    await page.context().close();
  }
  assert.deepEqual(ctx.pageErrors, [], 'no script errors, CSP violations or failed requests in the page');
});
