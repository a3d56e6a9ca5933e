/**
 * Reading text files the user gives (pipelines, params files, data files) strictly: only
 * regular files, at most a given size, and UTF-8 only. A byte that is not UTF-8 is an error
 * naming its line, never silently turned into U+FFFD.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';

/** Why a file cannot be read as text; `line`/`col` (1-based) are set for bytes that are not UTF-8. */
export class TextFileError extends Error {
  constructor(
    message: string,
    readonly reason: 'not-found' | 'not-a-file' | 'too-big' | 'not-utf8' | 'unreadable',
    readonly line?: number,
    readonly col?: number,
  ) {
    super(message);
    this.name = 'TextFileError';
  }
}

/** 1 MiB, 2.5 MiB, 734 bytes. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${+(bytes / 1024).toFixed(1)} KiB`;
  return `${+(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a pipe (FIFO)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Reads a regular file of at most `maxBytes` bytes. Devices, pipes and folders are refused
 * before anything is read (a pipe is opened without blocking), and no more than `maxBytes + 1`
 * bytes are ever read, even from a file that grows meanwhile.
 */
export function readRegularFile(path: string, maxBytes: number): Buffer {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new TextFileError('file not found', 'not-found');
    throw new TextFileError(`cannot read it (${code ?? (err as Error).message})`, 'unreadable');
  }
  if (!st.isFile()) throw new TextFileError(`${kindOf(st)}, not a regular file`, 'not-a-file');
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new TextFileError(`cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'unreadable');
  }
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile()) throw new TextFileError(`${kindOf(fst)}, not a regular file`, 'not-a-file');
    if (fst.size > maxBytes) throw new TextFileError(`${formatSize(fst.size)}, over the limit of ${formatSize(maxBytes)}`, 'too-big');
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > maxBytes) throw new TextFileError(`over the limit of ${formatSize(maxBytes)}`, 'too-big');
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

const strict = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes UTF-8 strictly (a leading byte-order mark is dropped). On a byte that is not UTF-8,
 * throws a TextFileError with the line and column (in bytes, 1-based) of the first such byte.
 */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    // The lenient decoding encodes back to the same bytes up to the first bad one.
    const back = Buffer.from(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), 'utf8');
    let at = 0;
    while (at < bytes.length && back[at] === bytes[at]) at++;
    // A sequence cut short can share its first bytes with the replacement: back up to its lead byte.
    for (let k = 1; k <= 3 && at - k >= 0; k++) {
      const b = bytes[at - k];
      if ((b & 0xc0) === 0x80) continue;
      if (b >= 0xc0 && (b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2) > k) at -= k;
      break;
    }
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) [line, lineStart] = [line + 1, i + 1];
    const byte = bytes[at] ?? 0;
    throw new TextFileError(
      `line ${line} holds bytes that are not UTF-8 (0x${byte.toString(16).padStart(2, '0')} at byte ${at - lineStart + 1} of the line)`,
      'not-utf8',
      line,
      at - lineStart + 1,
    );
  }
}

/** Reads a user's text file: regular, at most `maxBytes`, strict UTF-8. Throws TextFileError. */
export function readTextFile(path: string, maxBytes: number): string {
  return decodeUtf8(readRegularFile(path, maxBytes));
}
