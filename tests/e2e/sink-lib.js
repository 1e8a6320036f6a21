// The box's display sink (`--display-out y4m:PATH`, what its HDMI-out would show) as tests
// read it: pictures one at a time from a growing y4m file, their pixels, and when each was
// shown (PATH.times, unix microseconds a line).

import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';

/**
 * The y4m file's picture size, its frame count and a reader of frame `i` (an I420 buffer). Reads
 * only what is asked: the file grows by a picture each time the display changes.
 */
export function openY4m(file) {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(128);
    readSync(fd, head, 0, 128, 0);
    const headerEnd = head.indexOf(0x0a);
    const header = head.subarray(0, headerEnd).toString();
    const w = Number(/ W(\d+)/.exec(header)[1]);
    const h = Number(/ H(\d+)/.exec(header)[1]);
    const size = w * h + 2 * (Math.ceil(w / 2) * Math.ceil(h / 2));
    const record = 'FRAME\n'.length + size;
    const count = Math.max(0, Math.floor((fstatSync(fd).size - headerEnd - 1) / record));
    const frame = (i) => {
      const f = Buffer.alloc(size);
      const rfd = openSync(file, 'r');
      try {
        readSync(rfd, f, 0, size, headerEnd + 1 + i * record + 'FRAME\n'.length);
      } finally {
        closeSync(rfd);
      }
      return f;
    };
    return { w, h, count, frame, last: () => frame(count - 1) };
  } finally {
    closeSync(fd);
  }
}

/** The colour of the pixel at (x, y) as Y, U, V. */
export function yuvAt({ w, h }, frame, x, y) {
  const cw = Math.ceil(w / 2);
  const ch = Math.ceil(h / 2);
  const c = Math.floor(y / 2) * cw + Math.floor(x / 2);
  return { y: frame[y * w + x], u: frame[w * h + c], v: frame[w * h + cw * ch + c] };
}

/** When each picture of the sink was shown, in milliseconds since the epoch. */
export function shownTimes(file) {
  return readFileSync(`${file}.times`, 'utf8').trim().split('\n').map((l) => Number(l) / 1000);
}
