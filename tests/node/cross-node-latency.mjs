// Measures what a cross-node delivery adds over a same-node one, on a
// running cluster (scripts/cluster): one socket.io-client watcher on node A,
// one on node B, mutations through node A's REST API one after the other;
// for each event, the time from sending the request to receipt on each
// watcher.
//   node tests/node/cross-node-latency.mjs URL_A URL_B [EVENTS]
// Prints the p50/p90/p99 of both, and of their difference per event.

import { randomUUID } from 'node:crypto';
import { io } from 'socket.io-client';

const [urlA, urlB, eventsArg] = process.argv.slice(2);
if (!urlA || !urlB) {
  console.error('usage: node tests/node/cross-node-latency.mjs URL_A URL_B [EVENTS]');
  process.exit(2);
}
const EVENTS = Number(eventsArg ?? 500);
const PASSWORD = 'correct horse battery';

async function call(method, url, token, body) {
  const response = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

function watcher(url, token, vaultId, received) {
  return new Promise((resolve, reject) => {
    const socket = io(url, { auth: { token }, transports: ['websocket'] });
    socket.on('connect_error', reject);
    socket.on('connect', () => socket.emit('vault:join', { vaultId, since: 0 }));
    socket.on('vault:joined', () => resolve(socket));
    socket.on('source:created', (event) => received.set(event.source.title, performance.now()));
  });
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const email = `latency-${randomUUID()}@bench.dev`;
await call('POST', `${urlA}/api/auth/signup`, null, { email, name: 'Latency', password: PASSWORD });
const { token } = await call('POST', `${urlA}/api/auth/login`, null, { email, password: PASSWORD });
const { vault } = await call('POST', `${urlA}/api/vaults`, token, { name: 'Latency' });
const onA = new Map();
const onB = new Map();
const sockets = [await watcher(urlA, token, vault.id, onA), await watcher(urlB, token, vault.id, onB)];

const sent = new Map();
for (let i = 0; i < EVENTS; i += 1) {
  const title = `event ${i}`;
  sent.set(title, performance.now());
  await call('POST', `${urlA}/api/vaults/${vault.id}/sources`, token, { title, fileUrl: 'https://example.org/p.pdf' });
}
const deadline = Date.now() + 10000;
while ((onA.size < EVENTS || onB.size < EVENTS) && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
for (const socket of sockets) socket.close();

const same = [];
const cross = [];
const extra = [];
for (const [title, at] of sent) {
  if (!onA.has(title) || !onB.has(title)) continue;
  same.push(onA.get(title) - at);
  cross.push(onB.get(title) - at);
  extra.push(onB.get(title) - onA.get(title));
}
const row = (name, values) => `${name.padEnd(28)} ${[50, 90, 99].map((p) => `p${p} ${percentile(values, p).toFixed(2)} ms`).join('  ')}`;
console.log(`${EVENTS} events through ${urlA}; delivered on A ${onA.size}, on B ${onB.size}`);
console.log(row('same node (request → A)', same));
console.log(row('cross node (request → B)', cross));
console.log(row('extra (B − A, per event)', extra));
process.exit(onA.size === EVENTS && onB.size === EVENTS ? 0 : 1);
