// Chromium's own processing of the bench's microphone signal: headless Chromium, fake capture
// device playing mic.wav, the page (page.html) playing far.wav and recording the processed
// track. One fresh browser per configuration; writes DIR/chromium-NAME.wav and prints the CPU
// time its processes took over the recording, by process type, as JSON.
//   node run.mjs DIR      (DIR holds far.wav and mic.wav from aec-candidates --chromium-wavs)
import { createServer } from 'node:http';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS } from '../../../tests/e2e/lib.js';

const { chromium } = createRequire(new URL('../../../tests/e2e/lib.js', import.meta.url))('playwright-core');
const dir = resolve(process.argv[2]); // Chromium's audio service needs an absolute path
const here = new URL('.', import.meta.url).pathname;
const LEAD_S = 1.5; // chromium::LEAD_S
const FAR_LEAD_S = Number(process.env.FAR_LEAD_S || 0.2);
const SECONDS = LEAD_S + 25 + 1;
const CLK_TCK = Number(process.env.CLK_TCK || 100);
const CONFIGS = [
  { name: 'AEC+NS on', processing: true, args: [] },
  { name: 'processing off', processing: false, args: [] },
  // The far end as a WebRTC call's remote audio instead of WebAudio's; then the same with the
  // processing moved back from the audio service into the renderer.
  { name: 'AEC+NS on, far end via peer connection', processing: true, pc: true, args: [] },
  { name: 'AEC+NS on, far end via peer connection, renderer processing', processing: true, pc: true,
    args: ['--disable-features=ChromeWideEchoCancellation'] },
  // Its baseline for CPU: the same page and call, processing off.
  { name: 'processing off, far end via peer connection, renderer processing', processing: false, pc: true,
    args: ['--disable-features=ChromeWideEchoCancellation'] },
];

let upload = null;
const server = createServer((req, res) => {
  if (req.method === 'POST') {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => { upload(Buffer.concat(parts)); res.end('ok'); });
    return;
  }
  const file = req.url === '/' ? 'page.html' : req.url.slice(1);
  const path = file === 'far.wav' ? join(dir, file) : join(here, file);
  const type = file.endsWith('.js') ? 'text/javascript' : file.endsWith('.wav') ? 'audio/wav' : 'text/html';
  let body;
  try { body = readFileSync(path); } catch { res.writeHead(404); res.end(); return; }
  res.writeHead(200, { 'content-type': type });
  res.end(body);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/`;

function wav(pcm) {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + pcm.length, 4); h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22);
  h.writeUInt32LE(48000, 24); h.writeUInt32LE(96000, 28); h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34); h.write('data', 36); h.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([h, pcm]);
}

// CPU seconds (user + system) of every process under `root` (this node process: Playwright
// starts the browser as its child), by Chromium process type.
function cpu(root) {
  const procs = new Map();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split(/[\0 ]/);
      const type = cmd.find((a) => a.startsWith('--utility-sub-type='))?.split('=')[1]
        ?? cmd.find((a) => a.startsWith('--type='))?.split('=')[1] ?? 'browser';
      procs.set(Number(p), { ppid: Number(f[1]), t: (Number(f[11]) + Number(f[12])) / CLK_TCK, type });
    } catch { /* gone */ }
  }
  const under = (pid) => pid === root || (procs.has(pid) && pid > 1 && under(procs.get(pid).ppid));
  const byType = {};
  for (const [pid, p] of procs) if (pid !== root && under(pid)) byType[`${p.type} ${pid}`] = p.t;
  return byType;
}

const report = [];
for (const c of CONFIGS) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, `--use-file-for-fake-audio-capture=${join(dir, 'mic.wav')}`, ...c.args],
  });
  const page = await browser.newPage();
  page.on('console', (m) => console.error(`page: ${m.text()}`));
  await page.goto(url);
  const got = new Promise((r) => (upload = r));
  const pid = process.pid;
  const before = cpu(pid);
  let after;
  // The CPU snapshot just before the page stops, while every process is still there.
  const timer = setTimeout(() => (after = cpu(pid)), (SECONDS - 0.2) * 1000);
  const info = await page.evaluate((o) => window.measure(o), { processing: c.processing, leadS: LEAD_S, farLeadS: FAR_LEAD_S, seconds: SECONDS, viaPeerConnection: !!c.pc });
  clearTimeout(timer);
  after ??= cpu(pid);
  const pcm = await got;
  const file = `chromium-${c.name.replace(/[^A-Za-z0-9+]+/g, '-')}.wav`;
  writeFileSync(join(dir, file), wav(pcm));
  const used = {};
  for (const [k, t] of Object.entries(after)) {
    const type = k.split(' ')[0];
    used[type] = (used[type] ?? 0) + t - (before[k] ?? 0);
  }
  report.push({ config: c.name, args: c.args, file, seconds: SECONDS, samples: info.samples, firstFrame: info.firstFrame, farStart: info.farStart, outputLatency: info.outputLatency, settings: info.settings, cpuSeconds: used, version: browser.version() });
  await browser.close();
}
server.close();
writeFileSync(join(dir, 'chromium-version.txt'), report[0].version);
console.log(JSON.stringify(report, null, 1));
