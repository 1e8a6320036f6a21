// Soak, short: ~100 join/leave cycles by browser-like WebRTC peers (roombox-soak, str0m; two at
// a time) against a fresh roombox-signal and `roombox run`. Every cycle must connect and receive
// the box's video and audio; afterwards the box must report no peers and hold as many file
// descriptors as before (a leaked socket or timer fd would show). No timing is asserted.
// The long run with memory figures is bench/soak/run.sh.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { artifactsDir, repoRoot, startServer, waitFor } from './lib.js';

const BOX_BIN = process.env.BOX_BIN || path.join(repoRoot, 'target', 'debug', 'roombox');
const SOAK_BIN = process.env.SOAK_BIN || path.join(repoRoot, 'target', 'debug', 'roombox-soak');
const CYCLES = Number(process.env.SOAK_CYCLES || 100);
const ROOM = 'soak-ci';
const STATUS = /status: .*peers=(\d+)/;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

function fdCount(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * `roombox run` with the test sources and its room secret in `stateDir/room-secret` (the soak
 * peer reads the same file); its log lines are collected in `log`.
 */
function startBox(signalUrl, stateDir) {
  const args = [
    'run', '--signal-url', signalUrl, '--room', ROOM, '--name', 'Soak box', '--state-dir', stateDir,
    '--video', 'test', '--audio-in', 'test', '--audio-out', 'none',
    '--width', '320', '--height', '180', '--fps', '15', '--ice-loopback',
  ];
  const proc = spawn(BOX_BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.BOX_LOG || 'info,str0m=warn', NO_COLOR: '1' },
  });
  const log = [];
  for (const stream of [proc.stdout, proc.stderr]) {
    let partial = '';
    stream.on('data', (d) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop();
      for (const l of lines) {
        log.push(l.replace(ANSI, ''));
        if (process.env.E2E_VERBOSE) process.stderr.write(`[box] ${l}\n`);
      }
    });
  }
  const exited = once(proc, 'exit');
  const running = () => proc.exitCode === null && proc.signalCode === null;
  return {
    proc,
    args,
    log,
    running,
    async waitForLine(re, { from = 0, timeout = 30000 } = {}) {
      return waitFor(() => {
        if (!running()) throw new Error(`roombox exited (${proc.exitCode ?? proc.signalCode})`);
        return log.slice(from).find((l) => re.test(l));
      }, { timeout, what: `box log ${re}` });
    },
    async kill() {
      if (!running()) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => { if (running()) proc.kill('SIGKILL'); }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Run roombox-soak to completion; resolves with {code, stdout, stderr}. */
async function runSoak(args) {
  const proc = spawn(SOAK_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (process.env.E2E_VERBOSE) process.stderr.write(`[soak] ${d}`);
  });
  const [code, sig] = await once(proc, 'exit');
  return { code: code ?? sig, stdout, stderr };
}

test(`soak: ${CYCLES} join/leave cycles leave the box with no peers and no leaked fds`, { timeout: 300000 }, async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'roombox-soak-'));
  const secretFile = path.join(work, 'room-secret');
  writeFileSync(secretFile, `${randomBytes(16).toString('base64url')}\n`, { mode: 0o600 });
  const server = await startServer();
  const box = startBox(server.url, work);
  let failed = true;
  try {
    await box.waitForLine(/ joined/);
    // The pipeline is up and a status line logged before the baseline is taken.
    await box.waitForLine(STATUS, { timeout: 15000 });
    const pid = box.proc.pid;
    const baselineFds = fdCount(pid);

    const jsonPath = path.join(work, 'soak.json');
    const soak = await runSoak([
      '--signal-url', server.url, '--room', ROOM, '--room-secret-file', secretFile, '--cycles', String(CYCLES), '--parallel', '2',
      '--box-pid', String(pid), '--sample-every', '25', '--expect-size', '320x180',
      '--max-failures', '0', '--abort-after', '5', '--settle-secs', '0', '--json', jsonPath,
    ]);
    const afterSoak = box.log.length;
    assert.equal(soak.code, 0, `roombox-soak failed:\n${soak.stdout}\n${soak.stderr.slice(-4000)}`);
    const report = JSON.parse(readFileSync(jsonPath, 'utf8'));
    assert.equal(report.summary.ok, CYCLES, JSON.stringify(report.summary.failures));
    assert.equal(report.summary.failed, 0);
    assert.equal(report.cycles.length, CYCLES);
    for (const c of report.cycles) {
      assert.ok(c.outcome, `cycle ${c.cycle}: ${c.error}`);
      assert.ok(c.outcome.video_frames > 0 && c.outcome.audio_packets > 0, `cycle ${c.cycle}: ${JSON.stringify(c.outcome)}`);
      assert.deepEqual([c.outcome.width, c.outcome.height], [320, 180]);
    }

    // Every peer is gone from the box: the next status line reports none.
    const status = await box.waitForLine(STATUS, { from: afterSoak, timeout: 15000 });
    assert.equal(STATUS.exec(status)[1], '0', `box status after the soak: ${status}`);

    // File descriptors back to where they were (a small margin for the runtime's own churn).
    const fds = fdCount(pid);
    assert.ok(Math.abs(fds - baselineFds) <= 3, `box fds: ${baselineFds} before, ${fds} after ${CYCLES} cycles`);
    assert.ok(box.running(), 'the box is still running');
    failed = false;
  } finally {
    await box.kill();
    await server.kill('SIGTERM');
    if (failed) {
      mkdirSync(artifactsDir, { recursive: true });
      writeFileSync(path.join(artifactsDir, 'soak-roombox.log'), `${BOX_BIN} ${box.args.join(' ')}\n${box.log.join('\n')}\n`);
    }
    rmSync(work, { recursive: true, force: true });
  }
});
