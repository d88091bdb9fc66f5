import { gzipSync } from 'node:zlib';

/** A gzipped ustar archive of the given entries, shaped like GitHub's tarballs. */
export function tarball(
  entries: { path: string; content?: string; type?: '0' | '2' | '5'; linkTo?: string }[],
): Buffer {
  const blocks: Buffer[] = [];
  const header = (name: string, size: number, type: string, linkTo = '') => {
    const block = Buffer.alloc(512);
    block.write(name.slice(0, 100), 0, 'utf8');
    block.write('0000644\0', 100);
    block.write('0000000\0', 108);
    block.write('0000000\0', 116);
    block.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
    block.write('00000000000\0', 136);
    block.write('        ', 148);
    block.write(type, 156);
    block.write(linkTo, 157);
    block.write('ustar\0', 257);
    block.write('00', 263);
    let sum = 0;
    for (const byte of block) sum += byte;
    block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    return block;
  };
  // GitHub's global pax header, then every entry under one top folder.
  const comment = Buffer.from('52 comment=0123456789abcdef0123456789abcdef01234567\n');
  blocks.push(header('pax_global_header', comment.length, 'g'), comment, Buffer.alloc(512 - comment.length));
  for (const entry of entries) {
    const data = Buffer.from(entry.content ?? '');
    blocks.push(header(entry.path, data.length, entry.type ?? '0', entry.linkTo));
    if (data.length > 0) blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}
