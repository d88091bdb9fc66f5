import { crc32 } from 'node:zlib';

const checksum = (json: string) => crc32(json).toString(16).padStart(8, '0');

/** One line of a local record: the value's CRC-32 (8 hex digits), a space, the value as JSON. */
export function checksummedLine(value: unknown): string {
  const json = JSON.stringify(value);
  return `${checksum(json)} ${json}\n`;
}

/** The value of a checksummed line, or undefined when its checksum or its JSON does not hold. */
export function readChecksummedLine<T>(line: string): T | undefined {
  const match = /^([0-9a-f]{8}) (.*)$/s.exec(line);
  if (!match || checksum(match[2] as string) !== match[1]) return undefined;
  try {
    return JSON.parse(match[2] as string) as T;
  } catch {
    return undefined;
  }
}
