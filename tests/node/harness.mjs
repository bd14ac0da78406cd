// Test harness: the real `syncscript` binary on a free port over a fresh
// SQLite file, REST set-up with fetch, and the official socket.io-client.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { io } from 'socket.io-client';

import { startServer as startBinary } from './server.mjs';

/** How long a test waits for something that should happen. */
export const WAIT = 5000;

export const PASSWORD = 'correct horse battery';
export const FILE_URL = 'https://example.org/paper.pdf';

/** Starts `syncscript serve` over a fresh SQLite file; resolves once it is healthy. */
export async function startServer() {
  const dir = await mkdtemp(path.join(tmpdir(), 'syncscript-node-'));
  const server = await startBinary({
    databaseUrl: `sqlite://${dir}/db.sqlite`,
    env: { NO_COLOR: '1' },
    patience: WAIT * 2,
  });
  return {
    base: server.base,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A JSON request; resolves to {status, body, headers}. */
export async function call(base, method, route, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(base + route, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers };
}

async function expectStatus(promise, status, what) {
  const response = await promise;
  if (response.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${response.status} ${JSON.stringify(response.body)}`);
  }
  return response.body;
}

/** Signs up and logs in `name` ({name}@test.dev); returns {id, name, email, token, cookie}. */
export async function register(base, name) {
  const email = `${name}@test.dev`;
  await expectStatus(call(base, 'POST', '/api/auth/signup', { body: { email, name, password: PASSWORD } }), 201, 'signup');
  const response = await call(base, 'POST', '/api/auth/login', { body: { email, password: PASSWORD } });
  if (response.status !== 200) throw new Error(`login ${name}: ${response.status}`);
  const setCookie = response.headers.get('set-cookie') ?? '';
  return {
    id: response.body.user.id,
    name,
    email,
    token: response.body.token,
    // The cookie the login set, as a browser would send it back.
    cookie: setCookie.split(';')[0],
  };
}

/** A vault with an owner, a contributor, a viewer, and an outsider. */
export async function team(base) {
  const owner = await register(base, 'owner');
  const contributor = await register(base, 'contributor');
  const viewer = await register(base, 'viewer');
  const outsider = await register(base, 'outsider');
  const { vault } = await expectStatus(
    call(base, 'POST', '/api/vaults', { token: owner.token, body: { name: 'Team Vault' } }),
    201,
    'create vault',
  );
  for (const [user, role] of [[contributor, 'contributor'], [viewer, 'viewer']]) {
    await expectStatus(
      call(base, 'POST', `/api/vaults/${vault.id}/members`, { token: owner.token, body: { email: user.email, role } }),
      201,
      'add member',
    );
  }
  return { owner, contributor, viewer, outsider, vault };
}

export async function createSource(base, user, vaultId, title) {
  const { source } = await expectStatus(
    call(base, 'POST', `/api/vaults/${vaultId}/sources`, { token: user.token, body: { title, fileUrl: FILE_URL } }),
    201,
    'create source',
  );
  return source;
}

/**
 * Opens a socket.io-client socket and resolves once connected; rejects with
 * the `connect_error` (whose `message` is the server's reason) if refused.
 * Every event is recorded in `socket.received` ([name, payload]) in order.
 */
export function connect(base, options = {}) {
  const socket = io(base, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: WAIT,
    ...options,
  });
  socket.received = [];
  socket.onAny((name, payload) => socket.received.push([name, payload]));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('neither connect nor connect_error'));
    }, WAIT);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('connect_error');
      resolve(socket);
    });
    socket.once('connect_error', (error) => {
      clearTimeout(timer);
      socket.close();
      reject(error);
    });
  });
}

/** The first event `name` received from now on (or already recorded past index `from`). */
export function nextEvent(socket, name, { from = socket.received.length, timeout = WAIT } = {}) {
  const already = socket.received.slice(from).find(([n]) => n === name);
  if (already) return Promise.resolve(already[1]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(name, listener);
      reject(new Error(`no ${name} event within ${timeout} ms; received ${JSON.stringify(socket.received)}`));
    }, timeout);
    const listener = (payload) => {
      clearTimeout(timer);
      resolve(payload);
    };
    socket.once(name, listener);
  });
}

/** Emits with an ack, bounded by `WAIT`; resolves to the ack's argument. */
export function request(socket, event, payload) {
  return socket.timeout(WAIT).emitWithAck(event, payload);
}

/**
 * A round trip: an unknown event answered with an error ack. Once it is
 * back, everything the server sent this socket before has been recorded.
 */
export async function sync(socket) {
  const ack = await request(socket, 'test:sync', {});
  if (ack?.ok !== false) throw new Error(`unexpected sync ack ${JSON.stringify(ack)}`);
}

export const SEQUENCED = new Set([
  'source:created',
  'source:updated',
  'source:deleted',
  'member:added',
  'member:updated',
  'member:removed',
  'vault:updated',
  'vault:deleted',
]);
