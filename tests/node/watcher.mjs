// A watcher of one vault over the official socket.io-client, for the Rust
// cluster tests: `node watcher.mjs URL TOKEN VAULT_ID [polling]` (WebSocket
// only by default; with `polling`, the client's default of HTTP
// long-polling first, then an upgrade, as in a browser).
//
// It follows docs/protocol.md's catch-up rules (join with `since` on every
// connect, apply in seq order exactly once, rejoin on a gap or on a
// `vault:head` beyond the last applied seq) and prints one JSON object per
// line on stdout: {"applied": seq, "event": name} for each event applied,
// {"signal": name, ...payload} for each signal, {"status": ...} for
// connection changes.

import { io } from 'socket.io-client';

const [url, token, vaultId, transport] = process.argv.slice(2);
if (!url || !token || !vaultId) {
  console.error('usage: node watcher.mjs URL TOKEN VAULT_ID');
  process.exit(2);
}

const SEQUENCED = [
  'source:created', 'source:updated', 'source:deleted',
  'member:added', 'member:updated', 'member:removed',
  'vault:updated', 'vault:deleted',
];
const GAP_GRACE_MS = 300;

const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

let last = 0;
const pending = new Map();
let gapTimer;

const socket = io(url, {
  auth: { token },
  transports: transport === 'polling' ? ['polling', 'websocket'] : ['websocket'],
  reconnectionDelay: 100,
  reconnectionDelayMax: 500,
});

function join() {
  if (socket.connected) socket.emit('vault:join', { vaultId, since: last });
}

function drain() {
  while (pending.has(last + 1)) {
    const name = pending.get(last + 1);
    pending.delete(last + 1);
    last += 1;
    print({ applied: last, event: name });
  }
  clearTimeout(gapTimer);
  if (pending.size > 0) gapTimer = setTimeout(join, GAP_GRACE_MS);
}

socket.on('connect', () => {
  print({ status: 'connected' });
  join();
});
socket.on('disconnect', (reason) => {
  print({ status: 'disconnected', reason });
  // A disconnect by the server is not retried by socket.io-client itself.
  if (reason === 'io server disconnect') setTimeout(() => socket.connect(), 100);
});
socket.on('connect_error', (error) => print({ status: 'connect_error', message: error.message }));

for (const name of SEQUENCED) {
  socket.on(name, (payload) => {
    if (!payload || payload.vaultId !== vaultId || typeof payload.seq !== 'number') return;
    if (payload.seq <= last) return;
    pending.set(payload.seq, name);
    drain();
  });
}
for (const name of ['vault:joined', 'vault:removed', 'vault:resync', 'presence', 'error']) {
  socket.on(name, (payload) => print({ signal: name, ...payload }));
}
socket.on('vault:head', (head) => {
  print({ signal: 'vault:head', ...head });
  if (head && head.vaultId === vaultId && head.seq > last) join();
});

process.stdin.on('end', () => {
  socket.close();
  process.exit(0);
});
process.stdin.resume();
