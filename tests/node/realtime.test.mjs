// SyncScript's Socket.IO contract (docs/protocol.md) as seen by the official npm
// socket.io-client v4: handshake, transports, joins, events, catch-up,
// refusals. Run with `scripts/test-node` (builds nothing: set SYNCSCRIPT_BIN
// or build target/debug/syncscript first).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  FILE_URL,
  SEQUENCED,
  call,
  connect,
  createSource,
  nextEvent,
  register,
  request,
  startServer,
  sync,
  team,
} from './harness.mjs';

let server;
let base;
let t; // the team: owner, contributor, viewer, outsider, vault
const sockets = [];

/** Connects and remembers the socket so that `after` closes it. */
async function open(options) {
  const socket = await connect(base, options);
  sockets.push(socket);
  return socket;
}

async function joined(user, vaultId, options = {}) {
  const socket = await open({ auth: { token: user.token }, ...options });
  const ack = await request(socket, 'vault:join', vaultId);
  assert.equal(ack.ok, true, JSON.stringify(ack));
  return socket;
}

before(async () => {
  server = await startServer();
  base = server.base;
  t = await team(base);
});

after(async () => {
  for (const socket of sockets) socket.close();
  await server?.stop();
});

describe('handshake', () => {
  for (const transports of [['websocket'], ['polling']]) {
    test(`refused without a live session (${transports})`, async () => {
      for (const [why, options] of [
        ['no credentials', {}],
        ['forged token', { auth: { token: 'forged' } }],
        ['forged cookie', { extraHeaders: { cookie: 'syncscript_session=forged' } }],
      ]) {
        await assert.rejects(connect(base, { transports, ...options }), (error) => {
          assert.equal(error.message, 'UNAUTHORIZED', why);
          return true;
        });
      }
    });

    test(`token and cookie accepted (${transports})`, async () => {
      const byToken = await open({ transports, auth: { token: t.viewer.token } });
      const byCookie = await open({ transports, extraHeaders: { cookie: t.viewer.cookie } });
      for (const socket of [byToken, byCookie]) {
        assert.equal(socket.io.engine.transport.name, transports[0]);
        const ack = await request(socket, 'vault:join', t.vault.id);
        assert.deepEqual(ack, { ok: true, vaultId: t.vault.id, role: 'viewer', seq: ack.seq });
      }
    });
  }

  test('a revoked session is refused', async () => {
    const gone = await register(base, 'gone');
    const socket = await open({ auth: { token: gone.token } });
    const closed = new Promise((resolve) => socket.once('disconnect', resolve));
    const response = await call(base, 'POST', '/api/auth/logout', { token: gone.token });
    assert.equal(response.status, 204);
    // Logout also disconnects the session's sockets.
    assert.equal(await closed, 'io server disconnect');
    await assert.rejects(connect(base, { auth: { token: gone.token } }), { message: 'UNAUTHORIZED' });
  });

  test('a cookie from a foreign origin is refused', async () => {
    await assert.rejects(
      connect(base, { transports: ['polling'], extraHeaders: { cookie: t.viewer.cookie, origin: 'http://evil.example' } }),
      { message: 'UNAUTHORIZED' },
    );
  });
});

describe('rooms and events', () => {
  test('join: ack, vault:joined, and FORBIDDEN for outsiders', async () => {
    const socket = await open({ auth: { token: t.contributor.token } });
    const signal = nextEvent(socket, 'vault:joined');
    const ack = await request(socket, 'vault:join', { vaultId: t.vault.id });
    assert.equal(ack.ok, true);
    assert.equal(ack.role, 'contributor');
    assert.deepEqual(await signal, { vaultId: t.vault.id, role: 'contributor', seq: ack.seq });

    const outsider = await open({ auth: { token: t.outsider.token } });
    const refused = await request(outsider, 'vault:join', t.vault.id);
    assert.deepEqual(refused, { ok: false, error: { code: 'FORBIDDEN', message: 'Access denied to vault' } });
    // Without an ack, the `error` event says it.
    const error = nextEvent(outsider, 'error');
    outsider.emit('vault:join', t.vault.id);
    assert.deepEqual(await error, { code: 'FORBIDDEN', message: 'Access denied to vault' });
    const malformed = await request(outsider, 'vault:join', 42);
    assert.equal(malformed.error.code, 'BAD_REQUEST');
  });

  test('commands sent without an argument are answered, not dropped', async () => {
    const socket = await open({ auth: { token: t.owner.token } });
    for (const command of ['vault:join', 'vault:leave', 'source:create', 'source:update', 'source:delete']) {
      const ack = await socket.timeout(5000).emitWithAck(command);
      assert.equal(ack.ok, false, command);
      assert.equal(ack.error.code, 'BAD_REQUEST', command);
      assert.match(ack.error.message, new RegExp(command), command);
    }
  });

  test('a REST mutation arrives once as an event with the contract fields', async () => {
    const watcher = await joined(t.viewer, t.vault.id);
    const polling = await joined(t.owner, t.vault.id, { transports: ['polling'] });
    const notJoined = await open({ auth: { token: t.owner.token } });
    const from = watcher.received.length;
    const source = await createSource(base, t.contributor, t.vault.id, 'Attention Is All You Need');
    for (const socket of [watcher, polling]) {
      const event = await nextEvent(socket, 'source:created', { from: socket === watcher ? from : 0 });
      assert.equal(event.vaultId, t.vault.id);
      assert.equal(typeof event.seq, 'number');
      assert.deepEqual(event.actor, { userId: t.contributor.id, userName: 'contributor', role: 'contributor' });
      assert.match(event.timestamp, /^\d{4}-\d\d-\d\dT.*Z$/);
      assert.deepEqual(event.source, source);
      assert.equal(event.source.fileUrl, FILE_URL);
    }
    await sync(watcher);
    const copies = watcher.received.slice(from).filter(([name]) => name === 'source:created');
    assert.equal(copies.length, 1, 'exactly once');
    await sync(notJoined);
    assert.deepEqual(notJoined.received.filter(([name]) => SEQUENCED.has(name)), []);
  });

  test('catch-up with since after a reconnect replays exactly the missed events', async () => {
    const socket = await joined(t.viewer, t.vault.id);
    const first = createSource(base, t.owner, t.vault.id, 'Seen live');
    const live = await nextEvent(socket, 'source:created', { from: socket.received.length });
    await first;
    const lastSeen = live.seq;

    socket.disconnect();
    const missedA = await createSource(base, t.contributor, t.vault.id, 'Missed A');
    const renamed = await call(base, 'PATCH', `/api/sources/${missedA.id}`, { token: t.owner.token, body: { title: 'Missed A, renamed' } });
    assert.equal(renamed.status, 200);
    const deleted = await call(base, 'DELETE', `/api/sources/${missedA.id}`, { token: t.owner.token });
    assert.equal(deleted.status, 204);

    const reconnected = new Promise((resolve) => socket.once('connect', resolve));
    socket.connect();
    await reconnected;
    const from = socket.received.length;
    const ack = await request(socket, 'vault:join', { vaultId: t.vault.id, since: lastSeen });
    assert.equal(ack.ok, true);
    await nextEvent(socket, 'vault:joined', { from });
    const replay = socket.received.slice(from).filter(([name]) => name !== 'presence');
    const untilJoined = replay.slice(0, replay.findIndex(([name]) => name === 'vault:joined') + 1);
    assert.deepEqual(
      untilJoined.map(([name, payload]) => [name, payload.seq]),
      [
        ['source:created', lastSeen + 1],
        ['source:updated', lastSeen + 2],
        ['source:deleted', lastSeen + 3],
        ['vault:joined', lastSeen + 3],
      ],
    );
    // The same payloads as the log (which holds what was broadcast live).
    const log = await call(base, 'GET', `/api/vaults/${t.vault.id}/events?since=${lastSeen}`, { token: t.viewer.token });
    assert.deepEqual(untilJoined.slice(0, 3).map(([, payload]) => payload), log.body.events.map((e) => e.payload));
    assert.equal(untilJoined[2][1].sourceId, missedA.id);
  });

  test('viewer commands are refused and nothing is broadcast', async () => {
    const viewer = await joined(t.viewer, t.vault.id);
    const owner = await joined(t.owner, t.vault.id);
    const from = owner.received.length;
    const ack = await request(viewer, 'source:create', { vaultId: t.vault.id, title: 'Nope', fileUrl: FILE_URL });
    assert.deepEqual(ack, { ok: false, error: { code: 'FORBIDDEN', message: 'Insufficient permissions' } });
    const error = nextEvent(viewer, 'error');
    viewer.emit('source:create', { vaultId: t.vault.id, title: 'Nope again', fileUrl: FILE_URL });
    assert.deepEqual(await error, { code: 'FORBIDDEN', message: 'Insufficient permissions' });
    await sync(owner);
    assert.deepEqual(owner.received.slice(from).filter(([name]) => SEQUENCED.has(name)), []);
  });

  test('forged server events are refused and never relayed', async () => {
    const viewer = await joined(t.viewer, t.vault.id);
    const owner = await joined(t.owner, t.vault.id);
    const other = await joined(t.contributor, t.vault.id);
    const from = other.received.length;
    const forged = {
      vaultId: t.vault.id,
      seq: 999,
      actor: { userId: t.owner.id, userName: 'owner', role: 'owner' },
      timestamp: new Date().toISOString(),
      source: { id: 'forged', vaultId: t.vault.id, title: 'Forged', fileUrl: FILE_URL },
    };
    const asViewer = await request(viewer, 'source:created', forged);
    assert.deepEqual(asViewer, { ok: false, error: { code: 'FORBIDDEN', message: 'Insufficient permissions' } });
    const asOwner = await request(owner, 'source:created', forged);
    assert.equal(asOwner.ok, false);
    assert.equal(asOwner.error.code, 'BAD_REQUEST');
    assert.match(asOwner.error.message, /source:create\b/);
    await sync(other);
    const relayed = other.received.slice(from).filter(([name]) => name === 'source:created');
    assert.deepEqual(relayed, []);
  });
});
