/**
 * Read a whole file into memory past readFileSync's 2 GiB limit (sharded checkpoints are often
 * ~5 GB, token arrays can be larger), in 1 GiB chunks. `tooBig` says what to do when the file is
 * larger than one buffer can hold; the error names the file.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { constants as bufferConstants } from "node:buffer";
import { FileFormatError } from "../errors.ts";

export function readWholeFile(path: string, tooBig: string): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    if (size > bufferConstants.MAX_LENGTH) {
      throw new FileFormatError(path, `file is ${size} bytes, more than the ${bufferConstants.MAX_LENGTH} one in-memory buffer can hold; ${tooBig}`);
    }
    const out = new Uint8Array(size);
    let pos = 0;
    while (pos < size) {
      const got = readSync(fd, out, pos, Math.min(size - pos, 1 << 30), pos);
      if (got === 0) break;
      pos += got;
    }
    if (pos !== size) throw new FileFormatError(path, `file shrank from ${size} to ${pos} bytes while being read`);
    return out;
  } finally {
    closeSync(fd);
  }
}
