// The real `syncscript` binary for a JS test: started on a free port of
// 127.0.0.1 and awaited until `/healthz` answers, then stopped with SIGTERM.
// Shared by the Node tests (tests/node/harness.mjs) and the browser test
// (web/test/browser.test.mjs); it imports nothing but Node's own modules, so
// either can use it without the other's npm packages.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The server binary: $SYNCSCRIPT_BIN, default target/debug/syncscript. */
export const SERVER_BIN = path.resolve(REPO_ROOT, process.env.SYNCSCRIPT_BIN || 'target/debug/syncscript');

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts `syncscript serve` over `databaseUrl` on a free port, with `env`
 * added to the environment, and resolves once it is healthy; rejects with
 * its output when it exits first or is not healthy within `patience` ms.
 * Resolves to {base, log(), stop()}: `log()` is everything it printed,
 * `stop()` sends SIGTERM (SIGKILL after 5 s) and resolves once it exited.
 */
export async function startServer({ databaseUrl, env = {}, patience = 10_000 }) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(SERVER_BIN, ['serve', '--bind', `127.0.0.1:${port}`, '--database-url', databaseUrl], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = [];
  child.stdout.on('data', (chunk) => output.push(chunk.toString()));
  child.stderr.on('data', (chunk) => output.push(chunk.toString()));
  const log = () => output.join('');
  await new Promise((resolve, reject) => {
    child.once('error', (error) => {
      reject(new Error(`cannot start ${SERVER_BIN} (build it with cargo build -p syncscript): ${error.message}`));
    });
    child.once('spawn', resolve);
  });
  const deadline = Date.now() + patience;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the server exited (${child.exitCode ?? child.signalCode}):\n${log()}`);
    }
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() >= deadline) {
      throw new Error(`the server at ${base} was not healthy within ${patience} ms:\n${log()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    base,
    log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
