// What bench/e2ee's browser benches share: the machine they ran on, and writing their own
// section of RESULTS.md (between `<!-- NAME: begin` and `<!-- NAME: end -->`), leaving the
// rest of the file as it is.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

/** CPU, memory, kernel, Chromium and Node versions, for a results header. */
export function machine(chromiumPath) {
  const cpu = os.cpus();
  const chromium = spawnSync(chromiumPath, ['--version']).stdout?.toString().trim();
  return {
    cpu: `${cpu[0]?.model ?? 'unknown'} (${cpu.length} logical CPUs)`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    chromium,
    node: process.version,
  };
}

/**
 * Replaces `name`'s section of `file` with `lines` (the section's own lines, markers added
 * here), or appends it when the file has none yet.
 */
export function writeSection(file, name, lines) {
  const begin = `<!-- ${name}: begin`;
  const end = `<!-- ${name}: end -->`;
  const section = [
    `${begin} (written by bench/e2ee/${name}; edits here are overwritten) -->`,
    ...lines,
    end,
  ].join('\n');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Frame encryption: what it costs\n\n';
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) text = text.slice(0, a) + section + text.slice(b + end.length);
  else text = `${text.replace(/\n*$/, '\n\n')}${section}\n`;
  writeFileSync(file, text);
}
