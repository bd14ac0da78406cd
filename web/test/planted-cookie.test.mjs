// Headless Chromium against a cookie planted from another port of the same
// host: a victim logs in on the server's page; a page served on another
// port of 127.0.0.1 sets its own `syncscript_session` for the narrower path
// `/api` (cookies do not isolate ports, and the browser sends the more
// specific path first). Back on her page, her requests must be refused as
// carrying two session cookies, never served as the attacker.
//
// Run through scripts/test-browser (see browser.test.mjs for the
// environment).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { freePort, startServer } from '../../tests/node/server.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TIMEOUT_MS = 15_000;
const PASSWORD = 'correct horse battery';

const ctx = { tmp: null, server: null, attackerSite: null, browser: null };

async function signupAndLogin(email, name) {
  const json = { 'content-type': 'application/json' };
  const signup = await fetch(`${ctx.server.base}/api/auth/signup`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ email, name, password: PASSWORD }),
  });
  assert.equal(signup.status, 201, await signup.text());
  const login = await fetch(`${ctx.server.base}/api/auth/login`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  assert.equal(login.status, 200);
  return (await login.json()).token;
}

before(async () => {
  ctx.tmp = await mkdtemp(path.join(tmpdir(), 'syncscript-planted-'));
  ctx.server = await startServer({ databaseUrl: `sqlite://${path.join(ctx.tmp, 'db.sqlite')}` });
  ctx.browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
});

after(async () => {
  await ctx.browser?.close();
  await new Promise((resolve) => (ctx.attackerSite ? ctx.attackerSite.close(resolve) : resolve()));
  await ctx.server?.stop();
  if (ctx.tmp) await rm(ctx.tmp, { recursive: true, force: true });
});

test('a session cookie planted from another port is refused, not served', async () => {
  const attackerToken = await signupAndLogin('mallory@example.test', 'Mallory');
  await signupAndLogin('victim@example.test', 'Vera Victim');

  // The attacker's page: another port of the same host.
  const port = await freePort();
  ctx.attackerSite = createServer((_, response) => {
    response.setHeader('content-type', 'text/html');
    response.end(`<!doctype html><title>elsewhere</title><script>
      document.cookie = "syncscript_session=${attackerToken}; path=/api";
      document.title = "planted";
    </script>`);
  });
  await new Promise((resolve) => ctx.attackerSite.listen(port, '127.0.0.1', resolve));

  const context = await ctx.browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  await page.goto(`${ctx.server.base}/test/realtime`);
  const loggedIn = await page.evaluate(async (password) => {
    const answer = await fetch('/api/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'victim@example.test', password }),
    });
    return answer.status;
  }, PASSWORD);
  assert.equal(loggedIn, 200);
  const asVictim = await page.evaluate(async () => (await (await fetch('/api/me')).json()).user.name);
  assert.equal(asVictim, 'Vera Victim', 'her own cookie works');

  const elsewhere = await context.newPage();
  await elsewhere.goto(`http://127.0.0.1:${port}/`);
  await elsewhere.waitForFunction(() => document.title === 'planted');
  const cookies = (await context.cookies(`${ctx.server.base}/api/me`)).filter((c) => c.name === 'syncscript_session');
  assert.equal(cookies.length, 2, 'the browser now holds both cookies for the server');

  const answers = await page.evaluate(async () => {
    const me = await fetch('/api/me');
    const create = await fetch('/api/vaults', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'victim private notes' }),
    });
    return { me: [me.status, await me.json()], create: [create.status, await create.json()] };
  });
  for (const [status, body] of Object.values(answers)) {
    assert.equal(status, 401, JSON.stringify(body));
    assert.equal(body.error.code, 'UNAUTHORIZED');
    assert.match(body.error.message, /More than one session cookie/);
  }
  const vaults = await fetch(`${ctx.server.base}/api/vaults`, {
    headers: { authorization: `Bearer ${attackerToken}` },
  });
  assert.deepEqual((await vaults.json()).vaults, [], 'nothing was created in the attacker\'s account');
  await context.close();
});
