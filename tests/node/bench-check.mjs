// The figures of `syncscript-cli bench`, measured with the official
// socket.io-client instead of the bench's own lean client, to check that
// both agree at small scale. Same load, same accounting:
//   node tests/node/bench-check.mjs URL [WATCHERS] [EVENTS] [RATE] [WRITERS]
// (defaults 20 watchers, 50 events, 50/s, 4 writers; RATE 0 = unpaced).
// It signs up its own account, creates one vault, joins WATCHERS websocket
// clients, creates EVENTS sources over REST from WRITERS concurrent loops
// and times sending each request → receipt on every watcher. Prints one
// JSON object with the bench's field names.

import { randomUUID } from 'node:crypto';
import { io } from 'socket.io-client';

const [url, watchersArg, eventsArg, rateArg, writersArg] = process.argv.slice(2);
if (!url) {
  console.error('usage: node tests/node/bench-check.mjs URL [WATCHERS] [EVENTS] [RATE] [WRITERS]');
  process.exit(2);
}
const WATCHERS = Number(watchersArg ?? 20);
const EVENTS = Number(eventsArg ?? 50);
const RATE = Number(rateArg ?? 50);
const WRITERS = Number(writersArg ?? 4);
const DRAIN_MS = 10000;
const PASSWORD = 'correct horse battery';

async function call(method, path, token, body) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// One watcher: the seqs it saw and the receipt time of each title.
function watcher(token, vaultId, received) {
  const state = { highest: 0, seen: new Set(), outOfOrder: 0, gaps: 0, duplicates: 0 };
  return new Promise((resolve, reject) => {
    const socket = io(url, { auth: { token }, transports: ['websocket'], reconnection: false });
    socket.on('connect_error', reject);
    socket.on('connect', () => socket.emit('vault:join', { vaultId, since: 0 }));
    socket.on('vault:joined', () => resolve({ socket, state }));
    socket.on('source:created', (event) => {
      const at = performance.now();
      if (state.seen.has(event.seq)) {
        state.duplicates += 1;
        return;
      }
      state.seen.add(event.seq);
      if (event.seq < state.highest) state.outOfOrder += 1;
      if (event.seq > state.highest + 1) state.gaps += event.seq - state.highest - 1;
      state.highest = Math.max(state.highest, event.seq);
      received.push({ title: event.source.title, at });
    });
  });
}

// Nearest rank, as the bench computes it.
function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  const rank = Math.min(Math.max(Math.ceil(q * sorted.length), 1), sorted.length);
  return Math.round(sorted[rank - 1] * 1000) / 1000;
}

const email = `bench-check-${randomUUID()}@bench.invalid`;
await call('POST', '/api/auth/signup', null, { email, name: 'Bench check', password: PASSWORD });
const { token } = await call('POST', '/api/auth/login', null, { email, password: PASSWORD });
const { vault } = await call('POST', '/api/vaults', token, { name: 'Bench check' });

const received = [];
const connectStart = performance.now();
const watchers = await Promise.all(Array.from({ length: WATCHERS }, () => watcher(token, vault.id, received)));
const connectJoinMs = performance.now() - connectStart;

const sent = new Map();
const mutationLatencies = [];
let next = 0;
let failed = 0;
const start = performance.now();
async function writer() {
  for (let k = next++; k < EVENTS; k = next++) {
    if (RATE > 0) {
      const wait = start + (k * 1000) / RATE - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const title = `bench-${k}`;
    const at = performance.now();
    sent.set(title, at);
    try {
      await call('POST', `/api/vaults/${vault.id}/sources`, token, { title, fileUrl: `https://bench.invalid/${k}.pdf` });
      mutationLatencies.push(performance.now() - at);
    } catch {
      failed += 1;
    }
  }
}
await Promise.all(Array.from({ length: WRITERS }, writer));
const expected = (EVENTS - failed) * WATCHERS;
const deadline = performance.now() + DRAIN_MS;
while (received.length < expected && performance.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 10));
}
for (const { socket } of watchers) socket.close();
await call('DELETE', `/api/vaults/${vault.id}`, token);

const latencies = received.map(({ title, at }) => at - sent.get(title)).sort((a, b) => a - b);
mutationLatencies.sort((a, b) => a - b);
const sum = (field) => watchers.reduce((total, { state }) => total + state[field], 0);
console.log(JSON.stringify({
  client: 'socket.io-client',
  watchers: WATCHERS,
  events: EVENTS,
  rate: RATE,
  writers: WRITERS,
  connect_join_ms: Math.round(connectJoinMs * 10) / 10,
  mutations_ok: EVENTS - failed,
  mutations_failed: failed,
  mutation_latency_ms: { p50: quantile(mutationLatencies, 0.5), p99: quantile(mutationLatencies, 0.99), max: quantile(mutationLatencies, 1) },
  delivered: received.length,
  expected,
  complete: received.length >= expected,
  delivery_latency_ms: {
    p50: quantile(latencies, 0.5),
    p90: quantile(latencies, 0.9),
    p99: quantile(latencies, 0.99),
    p999: quantile(latencies, 0.999),
    max: quantile(latencies, 1),
  },
  gaps: sum('gaps'),
  out_of_order: sum('outOfOrder'),
  duplicates: sum('duplicates'),
}));
process.exit(received.length >= expected ? 0 : 1);
