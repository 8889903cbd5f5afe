// A real tkr-host for the client's tests: `tkr-host serve` as a subprocess on
// a free port with a temporary config and SQLite file, and HS256 tokens for
// its secret. TKR_HOST_BIN names the executable (default: the repository's
// .venv/bin/tkr-host).

import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const BIN = process.env.TKR_HOST_BIN ?? join(REPO, ".venv", "bin", "tkr-host");

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const b64url = (data) => Buffer.from(data).toString("base64url");

/** Wait until `check()` is truthy, up to `timeoutMs`; polls, never sleeps blindly past the condition. */
export async function waitFor(check, { timeoutMs = 10_000, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export class TestHost {
  /**
   * @param {{port?: number, config?: string, hostConfig?: string}} [options]
   *   `config`: TOML tables appended to the config; `hostConfig`: lines under `[host]`.
   */
  constructor({ port, config = "", hostConfig = "" } = {}) {
    this.hostExtra = hostConfig;
    this.dir = mkdtempSync(join(tmpdir(), "tkr-js-"));
    this.secret = randomBytes(32).toString("base64url");
    this.port = port;
    this.extra = config;
    this.process = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  token(sub, { kind = "user", ttl = 3600, ...claims } = {}) {
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const body = b64url(JSON.stringify({ sub, kind, name: sub, iat: now, exp: now + ttl, ...claims }));
    const signature = createHmac("sha256", this.secret).update(`${header}.${body}`).digest("base64url");
    return `${header}.${body}.${signature}`;
  }

  async start() {
    this.port ??= await freePort();
    const config = join(this.dir, "config.toml");
    writeFileSync(
      config,
      `bind = ["127.0.0.1:${this.port}"]\nworkers = 1\ngraceful_timeout = 1\n` +
        `[host]\nping_interval_s = 1\nping_timeout_s = 2\ndrain_timeout_s = 1\n${this.hostExtra}\n` +
        `[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n` +
        `[plugins.store_peewee]\nurl = "sqlite:///${this.dir}/tkr.db"\n${this.extra}`,
    );
    const log = openSync(join(this.dir, "host.log"), "a");
    this.process = spawn(BIN, ["serve", "--config", config], {
      cwd: this.dir,
      env: { ...process.env, TKR_JWT_SECRET: this.secret },
      stdio: ["ignore", log, log],
      detached: true,
    });
    const child = this.process;
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`tkr-host exited with ${child.exitCode}; see ${this.dir}/host.log`);
        try {
          return (await fetch(`${this.url}/readyz`)).status === 200;
        } catch {
          return false;
        }
      },
      { timeoutMs: 30_000, what: "the host to be ready" },
    );
  }

  /** Kill the host at once (SIGKILL to its process group), as a crash would. */
  async kill() {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
    await exited;
    this.process = null;
  }

  async close() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Every stored message of a session, through the HTTP history. */
  async history(token, sessionId) {
    const response = await fetch(`${this.url}/api/v1/sessions/${sessionId}/messages?limit=200`, { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) throw new Error(`history: HTTP ${response.status}`);
    return (await response.json()).messages;
  }
}
