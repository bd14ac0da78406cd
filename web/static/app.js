// SyncScript real-time test page.
//
// Logs in with the HttpOnly session cookie (never a token in the URL or in
// storage), shows one vault's sources live through the official
// socket.io-client, and makes the catch-up visible: a snapshot with its seq,
// then `vault:join {vaultId, since}`, events applied strictly in seq order,
// duplicates ignored, gaps refilled by joining again with `since` (a gap is
// seen from a later event, or from a `vault:head` beyond the last applied seq).
//
// Every source command carries an `opId`: a command that got no ack is sent
// again with the same `opId` (and a person pressing the button again for the
// same change after "no answer" reuses it too), so the server applies it at
// most once.

const SEQUENCED_EVENTS = [
  'source:created', 'source:updated', 'source:deleted',
  'member:added', 'member:updated', 'member:removed',
  'vault:updated', 'vault:deleted',
];
const ACK_TIMEOUT_MS = 5000;
// Sendings of one source command while no ack comes, the first included,
// and the pause between two.
const COMMAND_ATTEMPTS = 3;
const COMMAND_RETRY_MS = 500;
// How long an out-of-order event may wait for the ones before it before the
// page asks the server for the missing seqs (a live event can overtake the
// replay of a rejoin).
const GAP_GRACE_MS = 300;
// A server-initiated disconnect (restart, logout elsewhere) is not retried
// by socket.io-client itself.
const SERVER_DISCONNECT_RETRY_MS = 1000;
const LOG_LIMIT = 200;
const INSTALL_COMMAND = 'npm ci --prefix web';

const $ = (id) => document.getElementById(id);

const ui = {
  status: $('status'),
  login: $('login'),
  loginForm: $('login-form'),
  loginEmail: $('login-email'),
  loginPassword: $('login-password'),
  loginMessage: $('login-message'),
  session: $('session'),
  userName: $('user-name'),
  userEmail: $('user-email'),
  logout: $('logout'),
  vaultSelect: $('vault-select'),
  role: $('role'),
  simulate: $('simulate-disconnect'),
  seconds: $('disconnect-seconds'),
  reconnectNow: $('reconnect-now'),
  workspace: $('workspace'),
  sources: $('sources'),
  noSources: $('no-sources'),
  sourceCount: $('source-count'),
  appliedSeq: $('applied-seq'),
  form: $('source-form'),
  formTitle: $('source-form-title'),
  sourceId: $('source-id'),
  sourceTitle: $('source-title'),
  sourceUrl: $('source-url'),
  submit: $('source-submit'),
  cancel: $('source-cancel'),
  formMessage: $('form-message'),
  viewerHint: $('viewer-hint'),
  presence: $('presence'),
  logBody: $('log-body'),
};

const state = {
  user: null,
  vaults: [],
  vaultId: null,
  role: null,
  sources: new Map(),
  /** Last seq applied to `sources`. */
  seq: 0,
  /** Highest seq known to exist in the vault. */
  head: 0,
  /** Events received ahead of `seq + 1`, by seq. */
  pending: new Map(),
  snapshotLoaded: false,
  /** A join is under way: events arriving now are its catch-up. */
  joining: false,
  resyncing: false,
  socket: null,
  /** The timer of a simulated disconnect, while it lasts. */
  simulated: null,
  gapTimer: null,
  /** Bumped on every vault switch so stale answers are dropped. */
  generation: 0,
  /**
   * The last source command that got no ack at all, {change, opId}: the
   * server may have applied it, so the same change sent again reuses its
   * opId.
   */
  unanswered: null,
};

// ---------------------------------------------------------------- helpers

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A same-origin JSON request; the browser adds the session cookie. */
async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    throw new ApiError(response.status, error.code || `HTTP_${response.status}`,
      error.message || `HTTP ${response.status}`);
  }
  return data;
}

/**
 * A new opId (a UUID v4). `crypto.randomUUID` exists only in secure
 * contexts, and the page may be served over plain http.
 */
function newOpId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function setStatus(kind, text) {
  ui.status.dataset.state = kind;
  ui.status.textContent = text;
}

function setMessage(element, kind, text) {
  element.dataset.kind = kind;
  element.textContent = text;
}

function vaultName(id) {
  const vault = state.vaults.find((v) => v.id === id);
  return vault ? vault.name : id;
}

function clockTime(date) {
  return date.toLocaleTimeString(undefined, { hour12: false }) +
    '.' + String(date.getMilliseconds()).padStart(3, '0');
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/**
 * Adds a row to the event log. `entry`: {event, seq?, actor?, latencyMs?,
 * note?, kind?}.
 */
function log(entry) {
  const row = document.createElement('tr');
  row.dataset.kind = entry.kind || 'info';
  row.dataset.event = entry.event;
  if (entry.seq !== undefined) row.dataset.seq = String(entry.seq);
  const actor = entry.actor ? `${entry.actor.userName} (${entry.actor.role})` : '';
  const latency = entry.latencyMs === undefined ? '' : `${entry.latencyMs} ms`;
  for (const [text, className] of [
    [clockTime(new Date()), ''],
    [entry.event, ''],
    [entry.seq === undefined ? '' : String(entry.seq), ''],
    [actor, ''],
    [latency, ''],
    [entry.note || '', 'note'],
  ]) {
    row.append(element('td', text, className));
  }
  ui.logBody.prepend(row);
  while (ui.logBody.rows.length > LOG_LIMIT) ui.logBody.lastElementChild.remove();
}

// ------------------------------------------------------------- rendering

function renderConnected() {
  if (!state.socket || !state.socket.connected || state.simulated) return;
  if (!state.vaultId) {
    setStatus('connected', 'Connected — pick a vault');
  } else if (state.joining) {
    setStatus('connecting', `Joining vault “${vaultName(state.vaultId)}”…`);
  } else {
    setStatus('connected', `Connected to vault “${vaultName(state.vaultId)}” as ${state.role || 'member'}`);
  }
}

function renderSources() {
  const sources = [...state.sources.values()].sort((a, b) =>
    a.createdAt === b.createdAt ? a.id.localeCompare(b.id) : a.createdAt.localeCompare(b.createdAt));
  const items = sources.map((source) => {
    const item = document.createElement('li');
    item.dataset.sourceId = source.id;
    const text = element('div', undefined, 'source-text');
    const title = /^https?:\/\//i.test(source.fileUrl) ? element('a', source.title) : element('span', source.title);
    if (title.tagName === 'A') {
      title.href = source.fileUrl;
      title.rel = 'noopener noreferrer';
    }
    text.append(title, element('div', source.fileUrl, 'subtle'));
    const actions = element('div', undefined, 'actions');
    const edit = element('button', 'Edit', 'secondary small');
    edit.type = 'button';
    edit.setAttribute('aria-label', `Edit “${source.title}”`);
    edit.addEventListener('click', () => startEdit(source.id));
    const remove = element('button', 'Delete', 'secondary small');
    remove.type = 'button';
    remove.setAttribute('aria-label', `Delete “${source.title}”`);
    remove.addEventListener('click', () => deleteSource(source.id));
    actions.append(edit, remove);
    item.append(text, actions);
    return item;
  });
  ui.sources.replaceChildren(...items);
  ui.noSources.hidden = sources.length > 0;
  ui.sourceCount.textContent = `(${sources.length})`;
  ui.appliedSeq.textContent = String(state.seq);
}

function renderRole() {
  ui.role.textContent = state.role || '';
  ui.viewerHint.hidden = state.role !== 'viewer';
}

function renderVaultOptions() {
  const options = state.vaults.map((vault) => {
    const option = element('option', `${vault.name} (${vault.role})`);
    option.value = vault.id;
    return option;
  });
  if (options.length === 0) {
    const option = element('option', 'No vaults yet: create one with the CLI or the API');
    option.value = '';
    options.push(option);
  }
  ui.vaultSelect.replaceChildren(...options);
  ui.vaultSelect.value = state.vaultId || '';
}

function renderPresence(present) {
  const items = present.map((entry) => {
    const connections = entry.connections === 1 ? '1 connection' : `${entry.connections} connections`;
    const item = element('li', `${entry.userName} (${entry.role}) — ${connections}`);
    item.dataset.userId = entry.userId;
    return item;
  });
  if (items.length === 0) items.push(element('li', 'Nobody', 'subtle'));
  ui.presence.replaceChildren(...items);
}

// --------------------------------------------------------- vault state

/** Loads the sources and the seq they were taken at. */
async function loadSnapshot() {
  const generation = state.generation;
  const vaultId = state.vaultId;
  const snapshot = await api('GET', `/api/vaults/${encodeURIComponent(vaultId)}/sources`);
  if (generation !== state.generation) return false;
  state.sources = new Map(snapshot.sources.map((source) => [source.id, source]));
  state.seq = snapshot.seq;
  state.head = Math.max(state.head, snapshot.seq);
  for (const seq of [...state.pending.keys()]) {
    if (seq <= state.seq) state.pending.delete(seq);
  }
  state.snapshotLoaded = true;
  log({ event: 'snapshot', seq: snapshot.seq, note: `${snapshot.sources.length} sources via GET …/sources` });
  drain();
  return true;
}

function emitJoin() {
  const socket = state.socket;
  const vaultId = state.vaultId;
  if (!socket || !socket.connected || !vaultId || !state.snapshotLoaded) return;
  state.joining = true;
  renderConnected();
  const since = state.seq;
  log({ event: 'vault:join', seq: since, note: `join with since ${since}` });
  socket.timeout(ACK_TIMEOUT_MS).emit('vault:join', { vaultId, since }, (timeout, ack) => {
    if (vaultId !== state.vaultId || socket !== state.socket) return;
    if (timeout) {
      state.joining = false;
      // A lost join is asked again; a reconnect joins again by itself.
      const retry = socket.connected;
      log({ event: 'vault:join', kind: 'error', note: `no answer from the server${retry ? ': asking again' : ''}` });
      if (retry) emitJoin();
      return;
    }
    if (!ack || !ack.ok) {
      state.joining = false;
      const error = (ack && ack.error) || {};
      setStatus('offline', `Cannot join vault “${vaultName(vaultId)}”: ${error.code} — ${error.message}`);
      log({ event: 'vault:join', kind: 'refused', note: `${error.code}: ${error.message}` });
    }
  });
}

function onSequenced(name, payload) {
  if (!payload || payload.vaultId !== state.vaultId || typeof payload.seq !== 'number') return;
  const receivedAt = Date.now();
  const sent = Date.parse(payload.timestamp);
  const entry = {
    name,
    payload,
    latencyMs: Number.isNaN(sent) ? undefined : receivedAt - sent,
    catchUp: state.joining,
  };
  if (payload.seq <= state.seq || state.pending.has(payload.seq)) {
    if (state.snapshotLoaded) {
      log({ event: name, seq: payload.seq, actor: payload.actor, latencyMs: entry.latencyMs,
        kind: 'duplicate', note: 'already applied: ignored' });
      return;
    }
  }
  state.head = Math.max(state.head, payload.seq);
  state.pending.set(payload.seq, entry);
  if (state.snapshotLoaded) drain();
}

/** Applies every pending event that follows the last applied seq. */
function drain() {
  while (state.pending.has(state.seq + 1)) {
    const entry = state.pending.get(state.seq + 1);
    state.pending.delete(state.seq + 1);
    apply(entry.name, entry.payload);
    state.seq = entry.payload.seq;
    log({
      event: entry.name,
      seq: entry.payload.seq,
      actor: entry.payload.actor,
      latencyMs: entry.latencyMs,
      kind: entry.catchUp ? 'catch-up' : 'live',
      note: entry.catchUp ? 'caught up on join' : 'live',
    });
  }
  renderSources();
  checkGap();
}

function apply(name, payload) {
  switch (name) {
    case 'source:created':
    case 'source:updated':
      state.sources.set(payload.source.id, payload.source);
      break;
    case 'source:deleted':
      state.sources.delete(payload.sourceId);
      if (ui.sourceId.value === payload.sourceId) resetForm();
      break;
    case 'member:updated':
      if (state.user && payload.member.userId === state.user.id) {
        state.role = payload.member.role;
        renderRole();
        renderConnected();
      }
      break;
    case 'vault:updated': {
      const vault = state.vaults.find((v) => v.id === payload.vault.id);
      if (vault) vault.name = payload.vault.name;
      renderVaultOptions();
      renderConnected();
      break;
    }
    case 'vault:deleted':
      setStatus('offline', `Vault “${vaultName(state.vaultId)}” was deleted`);
      break;
    default:
      break;
  }
}

/** When a seq is missing for a moment, asks the server to replay from it. */
function checkGap() {
  clearTimeout(state.gapTimer);
  const idle = () => !state.joining && !state.resyncing && state.socket && state.socket.connected;
  if (state.seq >= state.head || !idle()) return;
  state.gapTimer = setTimeout(() => {
    if (state.seq < state.head && idle()) {
      log({ event: 'gap', kind: 'catch-up', note: `missing seq ${state.seq + 1}–${state.head}: joining again` });
      emitJoin();
    }
  }, GAP_GRACE_MS);
}

async function openVault(vaultId) {
  const socket = state.socket;
  if (state.vaultId && state.vaultId !== vaultId && socket && socket.connected) {
    socket.emit('vault:leave', state.vaultId);
  }
  state.generation += 1;
  Object.assign(state, {
    vaultId, role: null, sources: new Map(), seq: 0, head: 0, pending: new Map(),
    snapshotLoaded: false, joining: false, resyncing: false,
  });
  const vault = state.vaults.find((v) => v.id === vaultId);
  state.role = vault ? vault.role : null;
  renderRole();
  renderSources();
  renderPresence([]);
  resetForm();
  ui.workspace.hidden = !vaultId;
  const url = new URL(window.location.href);
  if (vaultId) url.searchParams.set('vaultId', vaultId);
  else url.searchParams.delete('vaultId');
  window.history.replaceState(null, '', url);
  if (!vaultId) {
    renderConnected();
    return;
  }
  try {
    if (await loadSnapshot()) emitJoin();
  } catch (error) {
    setStatus('offline', `Cannot load vault “${vaultName(vaultId)}”: ${error.message}`);
  }
}

// ------------------------------------------------------------- socket

function connectSocket() {
  if (typeof window.io !== 'function') {
    setStatus('offline', `Socket.IO client not loaded: run ${INSTALL_COMMAND}`);
    return;
  }
  // Same origin: the browser sends the session cookie with the handshake.
  const socket = window.io({
    transports: ['websocket', 'polling'],
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
    autoConnect: false,
  });
  state.socket = socket;

  socket.on('connect', () => {
    log({ event: 'connect', note: `over ${socket.io.engine.transport.name}` });
    renderConnected();
    if (state.vaultId && state.snapshotLoaded) emitJoin();
  });
  socket.on('disconnect', (reason) => {
    state.joining = false;
    log({ event: 'disconnect', kind: 'error', note: reason });
    if (state.simulated) return;
    if (reason === 'io server disconnect') {
      setStatus('offline', 'Disconnected by the server — retrying…');
      setTimeout(() => {
        if (state.socket === socket && !socket.connected) socket.connect();
      }, SERVER_DISCONNECT_RETRY_MS);
    } else if (reason !== 'io client disconnect') {
      setStatus('reconnecting', 'Connection lost — reconnecting…');
    }
  });
  socket.on('connect_error', (error) => {
    log({ event: 'connect_error', kind: 'error', note: error.message });
    if (error.message === 'UNAUTHORIZED') {
      setStatus('offline', 'Offline: the session is no longer valid — log in again');
      socket.disconnect();
      showLogin();
    } else if (!socket.active) {
      setStatus('offline', `Offline: ${error.message} — retrying…`);
      setTimeout(() => {
        if (state.socket === socket && !socket.connected) socket.connect();
      }, SERVER_DISCONNECT_RETRY_MS);
    } else {
      setStatus('reconnecting', `Reconnecting (${error.message})…`);
    }
  });
  socket.io.on('reconnect_attempt', (attempt) => {
    setStatus('reconnecting', `Reconnecting (attempt ${attempt})…`);
  });

  for (const name of SEQUENCED_EVENTS) {
    socket.on(name, (payload) => onSequenced(name, payload));
  }
  socket.on('vault:joined', (joined) => {
    if (!joined || joined.vaultId !== state.vaultId) return;
    state.joining = false;
    state.role = joined.role;
    state.head = Math.max(state.head, joined.seq);
    log({ event: 'vault:joined', seq: joined.seq, note: `head seq ${joined.seq}, role ${joined.role}` });
    renderRole();
    renderConnected();
    checkGap();
  });
  socket.on('vault:head', (head) => {
    if (!head || head.vaultId !== state.vaultId || typeof head.seq !== 'number') return;
    if (head.seq > state.seq) {
      log({ event: 'vault:head', seq: head.seq, kind: 'catch-up', note: `the vault is at seq ${head.seq}: catching up` });
    }
    state.head = Math.max(state.head, head.seq);
    checkGap();
  });
  socket.on('vault:left', (left) => {
    log({ event: 'vault:left', note: vaultName(left && left.vaultId) });
  });
  socket.on('vault:resync', async (resync) => {
    if (!resync || resync.vaultId !== state.vaultId) return;
    log({ event: 'vault:resync', seq: resync.seq, kind: 'catch-up', note: 'too far behind: reloading the snapshot' });
    state.resyncing = true;
    try {
      await loadSnapshot();
    } catch (error) {
      log({ event: 'vault:resync', kind: 'error', note: error.message });
    } finally {
      state.resyncing = false;
      checkGap();
    }
  });
  socket.on('vault:removed', (removed) => {
    if (!removed || removed.vaultId !== state.vaultId) return;
    log({ event: 'vault:removed', kind: 'error', note: removed.reason });
    state.vaults = state.vaults.filter((v) => v.id !== removed.vaultId);
    renderVaultOptions();
    openVault('');
    setStatus('offline', `Removed from vault: ${removed.reason}`);
  });
  socket.on('presence', (presence) => {
    if (!presence || presence.vaultId !== state.vaultId) return;
    renderPresence(presence.present);
    log({ event: 'presence', note: presence.present.map((p) => `${p.userName}×${p.connections}`).join(', ') || 'nobody' });
  });
  socket.on('error', (error) => {
    log({ event: 'error', kind: 'error', note: `${error && error.code}: ${error && error.message}` });
  });

  setStatus('connecting', 'Connecting…');
  socket.connect();
}

// ---------------------------------------------- simulated disconnection

function simulateDisconnect() {
  const socket = state.socket;
  if (!socket || state.simulated) return;
  const seconds = Math.min(600, Math.max(1, Number.parseInt(ui.seconds.value, 10) || 3));
  state.simulated = setTimeout(endSimulation, seconds * 1000);
  socket.disconnect();
  ui.simulate.disabled = true;
  ui.reconnectNow.disabled = false;
  const at = clockTime(new Date(Date.now() + seconds * 1000));
  setStatus('offline', `Offline (simulated disconnect) — reconnecting at ${at}`);
}

function endSimulation() {
  clearTimeout(state.simulated);
  state.simulated = null;
  ui.simulate.disabled = false;
  ui.reconnectNow.disabled = true;
  setStatus('connecting', 'Reconnecting…');
  if (state.socket) state.socket.connect();
}

// ------------------------------------------------------------- commands

function resetForm() {
  ui.form.reset();
  ui.sourceId.value = '';
  ui.formTitle.textContent = 'Add a source';
  ui.submit.textContent = 'Add source';
  ui.cancel.hidden = true;
}

function startEdit(sourceId) {
  const source = state.sources.get(sourceId);
  if (!source) return;
  ui.sourceId.value = source.id;
  ui.sourceTitle.value = source.title;
  ui.sourceUrl.value = source.fileUrl;
  ui.formTitle.textContent = 'Edit source';
  ui.submit.textContent = 'Save changes';
  ui.cancel.hidden = false;
  setMessage(ui.formMessage, 'info', '');
  ui.sourceTitle.focus();
}

/**
 * Sends a source command with an `opId` and reports its ack; the list itself
 * changes only when the event arrives, so every page shows the same
 * sequence. While no ack comes (a lost ack, a dropped connection) the very
 * same payload, opId included, is sent again, COMMAND_ATTEMPTS times in all.
 */
function sendCommand(command, fields, describe) {
  const socket = state.socket;
  if (!socket || !socket.connected) {
    setMessage(ui.formMessage, 'error', 'Not connected: wait for the connection or press “Reconnect now”.');
    return;
  }
  const change = JSON.stringify([command, fields]);
  const previous = state.unanswered;
  const opId = previous && previous.change === change ? previous.opId : newOpId();
  const payload = { ...fields, opId };
  const attempt = (n) => {
    if (socket !== state.socket) return;
    setMessage(ui.formMessage, 'info', n === 1
      ? `Sending ${command}…`
      : `No answer yet: sending ${command} again (attempt ${n} of ${COMMAND_ATTEMPTS}, same opId)…`);
    socket.timeout(ACK_TIMEOUT_MS).emit(command, payload, (timeout, ack) => answered(n, timeout, ack));
  };
  const answered = (n, timeout, ack) => {
    if (timeout) {
      if (n < COMMAND_ATTEMPTS) {
        log({ event: command, kind: 'error', note: `no answer within ${ACK_TIMEOUT_MS / 1000} s: sending again with opId ${opId}` });
        setTimeout(() => attempt(n + 1), COMMAND_RETRY_MS);
        return;
      }
      state.unanswered = { change, opId };
      setMessage(ui.formMessage, 'error', `No answer to ${command} after ${COMMAND_ATTEMPTS} attempts: ` +
        'it may or may not be applied. Send it again: it is applied at most once.');
      return;
    }
    // An answer settles that opId: the next change gets a new one.
    if (state.unanswered && state.unanswered.opId === opId) state.unanswered = null;
    if (!ack || !ack.ok) {
      const error = (ack && ack.error) || {};
      setMessage(ui.formMessage, 'error', `Refused by the server: ${error.code} — ${error.message}`);
      log({ event: command, kind: 'refused', note: `refused: ${error.code} ${error.message}` });
      return;
    }
    setMessage(ui.formMessage, 'ok', describe(ack));
    if (command !== 'source:delete') resetForm();
  };
  attempt(1);
}

function submitSource(event) {
  event.preventDefault();
  const sourceId = ui.sourceId.value;
  const title = ui.sourceTitle.value.trim();
  const fileUrl = ui.sourceUrl.value.trim();
  if (sourceId) {
    sendCommand('source:update', { sourceId, title, fileUrl }, (ack) => `Saved “${ack.source.title}”.`);
  } else {
    sendCommand('source:create', { vaultId: state.vaultId, title, fileUrl }, (ack) => `Added “${ack.source.title}”.`);
  }
}

function deleteSource(sourceId) {
  const source = state.sources.get(sourceId);
  const title = source ? source.title : sourceId;
  sendCommand('source:delete', { sourceId }, () => `Deleted “${title}”.`);
}

// ---------------------------------------------------------- session

function showLogin() {
  ui.login.hidden = false;
  ui.session.hidden = true;
  ui.workspace.hidden = true;
  ui.loginEmail.focus();
}

async function signedIn(user) {
  state.user = user;
  ui.userName.textContent = user.name;
  ui.userEmail.textContent = user.email;
  ui.login.hidden = true;
  ui.session.hidden = false;
  setMessage(ui.loginMessage, 'info', '');
  const { vaults } = await api('GET', '/api/vaults');
  state.vaults = vaults;
  const wanted = new URL(window.location.href).searchParams.get('vaultId');
  let vaultId = vaults.length > 0 ? vaults[0].id : '';
  if (wanted && vaults.some((v) => v.id === wanted)) {
    vaultId = wanted;
  } else if (wanted) {
    log({ event: 'vault', kind: 'error', note: `not a member of vault ${wanted} (or it does not exist)` });
  }
  state.vaultId = vaultId;
  renderVaultOptions();
  if (state.socket) {
    state.socket.connect();
  } else {
    connectSocket();
  }
  await openVault(vaultId);
}

async function login(event) {
  event.preventDefault();
  setMessage(ui.loginMessage, 'info', 'Logging in…');
  try {
    // The answer also carries the token; the page relies on the cookie only.
    const { user } = await api('POST', '/api/auth/login', {
      email: ui.loginEmail.value.trim(),
      password: ui.loginPassword.value,
    });
    ui.loginPassword.value = '';
    await signedIn(user);
  } catch (error) {
    setMessage(ui.loginMessage, 'error', `Login failed: ${error.message}`);
  }
}

async function logout() {
  try {
    await api('POST', '/api/auth/logout');
  } catch (error) {
    log({ event: 'logout', kind: 'error', note: error.message });
  }
  if (state.socket) state.socket.disconnect();
  state.user = null;
  await openVault('');
  setStatus('idle', 'Logged out');
  showLogin();
}

async function boot() {
  ui.loginForm.addEventListener('submit', login);
  ui.logout.addEventListener('click', logout);
  ui.vaultSelect.addEventListener('change', () => openVault(ui.vaultSelect.value));
  ui.simulate.addEventListener('click', simulateDisconnect);
  ui.reconnectNow.addEventListener('click', endSimulation);
  ui.form.addEventListener('submit', submitSource);
  ui.cancel.addEventListener('click', () => {
    resetForm();
    setMessage(ui.formMessage, 'info', '');
  });
  try {
    const { user } = await api('GET', '/api/me');
    await signedIn(user);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      setMessage(ui.loginMessage, 'error', `Cannot reach the server: ${error.message}`);
    }
    setStatus('idle', 'Not logged in');
    showLogin();
  }
}

boot();
