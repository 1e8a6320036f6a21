// A small internet of network namespaces for the NAT and TURN tests (run through run.sh, which
// gives the suite its own network and mount namespaces, so every namespace and address here
// lives and dies with the run; all addresses are private or documentation ones):
//
//   this namespace ("public"): bridge rbpub, 198.51.100.1/24 and fd00:5::1/64 (the signaling
//   server and coturn listen here)
//     site X: a router namespace rb-X-gw (WAN 198.51.100.N on rbpub, LAN bridge 10.N.0.1/24,
//       masquerading: port-preserving, or symmetric with fully-random ports; optionally
//       dropping every UDP packet from the LAN to the internet)
//       hosts on its LAN: namespaces rb-X-<host> with 10.N.0.<k>/24, default route via the router
//     v6 hosts: namespaces on rbpub itself with only an IPv6 address (no IPv4 at all)

import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { writeFileSync, chmodSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const PUBLIC_V4 = '198.51.100.1';
export const PUBLIC_V6 = 'fd00:5::1';

export const sh = (cmd, ...args) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();
const ip = (...args) => sh('ip', ...args);
const inNs = (ns, ...cmd) => sh('ip', 'netns', 'exec', ns, ...cmd);

let made = [];
let linkCount = 0;

/** The public bridge, once. */
export function makePublic() {
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'rbpub', 'type', 'bridge');
  ip('link', 'set', 'rbpub', 'up');
  ip('addr', 'add', `${PUBLIC_V4}/24`, 'dev', 'rbpub');
  ip('addr', 'add', `${PUBLIC_V6}/64`, 'dev', 'rbpub', 'nodad');
  // As on the internet, a packet to a private address from here goes out and is lost (a
  // gateway that never answers ARP) rather than failing at once: coturn closes a whole
  // allocation when a relayed send fails (ENETUNREACH), which a real server never sees.
  ip('route', 'add', 'default', 'via', '198.51.100.254', 'dev', 'rbpub');
}

function namespace(name) {
  ip('netns', 'add', name);
  made.push(name);
  inNs(name, 'ip', 'link', 'set', 'lo', 'up');
}

/** A veth pair: `a` in namespace `nsA` (null: here), `b` in `nsB`. */
function veth(nsA, a, nsB, b) {
  const tmpA = `rbv${linkCount}a`;
  const tmpB = `rbv${linkCount}b`;
  linkCount += 1;
  ip('link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB);
  for (const [ns, tmp, name] of [[nsA, tmpA, a], [nsB, tmpB, b]]) {
    if (ns) {
      ip('link', 'set', tmp, 'netns', ns);
      inNs(ns, 'ip', 'link', 'set', tmp, 'name', name);
      inNs(ns, 'ip', 'link', 'set', name, 'up');
    } else {
      ip('link', 'set', tmp, 'name', name);
      ip('link', 'set', name, 'up');
    }
  }
}

/**
 * A site behind a NAT router: `n` numbers it (WAN 198.51.100.(10+n), LAN 10.n.0.0/24);
 * `symmetric` gives every flow a random public port; `blockUdp` drops UDP leaving the LAN.
 */
export function makeSite(name, n, { symmetric = false, blockUdp = false } = {}) {
  const gw = `rb-${name}-gw`;
  namespace(gw);
  veth(null, `rbw-${name}`, gw, 'wan');
  ip('link', 'set', `rbw-${name}`, 'master', 'rbpub');
  const wan = `198.51.100.${10 + n}`;
  inNs(gw, 'ip', 'addr', 'add', `${wan}/24`, 'dev', 'wan');
  inNs(gw, 'ip', 'link', 'add', 'lan', 'type', 'bridge');
  inNs(gw, 'ip', 'link', 'set', 'lan', 'up');
  inNs(gw, 'ip', 'addr', 'add', `10.${n}.0.1/24`, 'dev', 'lan');
  inNs(gw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  const rules = [
    'table ip rb {',
    '  chain nat_postrouting {',
    '    type nat hook postrouting priority 100;',
    `    oifname "wan" masquerade${symmetric ? ' fully-random' : ''}`,
    '  }',
    '  chain filter_forward {',
    '    type filter hook forward priority 0;',
    ...(blockUdp ? ['    iifname "lan" meta l4proto udp drop'] : []),
    '  }',
    '}',
  ].join('\n');
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'rb-nft-')), 'rules.nft');
  writeFileSync(file, `${rules}\n`);
  inNs(gw, 'nft', '-f', file);
  let hosts = 1;
  return {
    name,
    wan,
    gw,
    /** A host namespace on the LAN; returns {ns, addr}. */
    host(hostName) {
      hosts += 1;
      const ns = `rb-${name}-${hostName}`;
      namespace(ns);
      veth(gw, `p${hosts}`, ns, 'eth0');
      inNs(gw, 'ip', 'link', 'set', `p${hosts}`, 'master', 'lan');
      const addr = `10.${n}.0.${hosts}`;
      inNs(ns, 'ip', 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      inNs(ns, 'ip', 'route', 'add', 'default', 'via', `10.${n}.0.1`);
      return { ns, addr };
    },
  };
}

/** A host on the public bridge with only an IPv6 address. */
export function makeV6Host(hostName, k) {
  const ns = `rb-v6-${hostName}`;
  namespace(ns);
  veth(null, `rb6-${hostName}`, ns, 'eth0');
  ip('link', 'set', `rb6-${hostName}`, 'master', 'rbpub');
  const addr = `fd00:5::${k}`;
  inNs(ns, 'ip', 'addr', 'add', `${addr}/64`, 'dev', 'eth0', 'nodad');
  return { ns, addr };
}

/** A script that runs Chromium in namespace `ns` (Playwright talks to it over its pipes). */
export function chromiumIn(ns, chromium) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rb-chromium-'));
  const file = path.join(dir, `chromium-${ns}`);
  writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${ns} ${chromium} "$@"\n`);
  chmodSync(file, 0o755);
  return file;
}

const DELAYLINE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'delayline.py');

/**
 * Delays everything host namespace `ns` sends by `ms` (no netem here: delayline.py holds the
 * packets in userspace). Its own packets are routed into a TUN device (policy routing on
 * `iif lo`); delayline.py writes them back into it after `ms`, and the kernel forwards them out
 * of the real interface as before. Returns { stop() }.
 */
export async function delayEgress(ns, ms) {
  const proc = spawn('ip', ['netns', 'exec', ns, 'python3', DELAYLINE, 'dl0', String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [first] = await once(proc.stdout, 'data');
  if (!first.toString().includes('ready')) throw new Error(`delayline: ${first}`);
  inNs(ns, 'ip', 'link', 'set', 'dl0', 'up');
  inNs(ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.dl0.rp_filter=0', 'net.ipv4.conf.dl0.accept_local=1');
  inNs(ns, 'ip', 'route', 'add', 'default', 'dev', 'dl0', 'table', '100');
  inNs(ns, 'ip', 'rule', 'add', 'iif', 'lo', 'lookup', '100');
  return {
    stop() {
      inNs(ns, 'ip', 'rule', 'del', 'iif', 'lo', 'lookup', '100');
      proc.kill('SIGKILL');
    },
  };
}

/** Removes every namespace made here (their links go with them). */
export function teardown() {
  for (const ns of made.reverse()) {
    try { ip('netns', 'del', ns); } catch { /* gone */ }
  }
  made = [];
  try { ip('link', 'del', 'rbpub'); } catch { /* gone */ }
}
