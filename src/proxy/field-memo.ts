/**
 * The strings made of the last answer's header bytes, kept by the field's position, so that the
 * next answer's equal bytes give back the same string without making it again.
 *
 * undici hands a region's answer over as Buffers, and each field's name and value must become a
 * string: a name through undici's lookup of well-known names (a walk of a tree, byte by byte), a
 * value through `toString('latin1')`, a call into C++ of about 650 instructions (counted). A
 * function answers with the same layout every time (the same names in the same order, and mostly
 * the same values: its content type, its length, the date for a second), so comparing the bytes
 * with the string made last time at that position, a few instructions a byte in JIT code, costs a
 * fraction of that. A position whose bytes differ is made afresh and remembered instead.
 *
 * Nothing refers to the Buffers once a call returns (undici may reuse their memory): what is kept
 * is the strings, and the bytes are compared with their characters.
 */

/** Answers with more fields than this remember only their first ones. */
const POSITIONS = 32;

/** Latin-1 letters A–Z as lower case; any other byte as it is. */
const asciiLower = (byte: number): number => (byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte);

/**
 * Field names, lower-cased. `lowerCased(bytes)` must lower-case A–Z and may lower-case other
 * Latin-1 letters too (a string's `toLowerCase`): a remembered name is a lower-cased one, so bytes
 * that equal it once A–Z are lower-cased would lower-case to it whatever else was done to them.
 */
export class NameMemo {
  private readonly names: string[] = new Array<string>(POSITIONS).fill('');

  constructor(private readonly lowerCased: (bytes: Buffer) => string) {}

  /** The lower-cased name of `bytes`, the field at `position` of the answer. */
  name(position: number, bytes: Buffer): string {
    if (position >= POSITIONS) return this.lowerCased(bytes);
    const last = this.names[position]!;
    const n = bytes.length;
    if (n === last.length) {
      let k = 0;
      while (k < n && asciiLower(bytes[k]!) === last.charCodeAt(k)) k++;
      if (k === n) return last;
    }
    const name = this.lowerCased(bytes);
    this.names[position] = name;
    return name;
  }
}

/** Field values as Latin-1 text (each byte one character, as undici reads them). */
export class ValueMemo {
  private readonly values: string[] = new Array<string>(POSITIONS).fill('');

  /** `bytes` as Latin-1 text, the value of the field at `position` of the answer. */
  value(position: number, bytes: Buffer): string {
    if (position >= POSITIONS) return bytes.toString('latin1');
    const last = this.values[position]!;
    const n = bytes.length;
    if (n === last.length) {
      let k = 0;
      while (k < n && bytes[k] === last.charCodeAt(k)) k++;
      if (k === n) return last;
    }
    const value = bytes.toString('latin1');
    this.values[position] = value;
    return value;
  }
}

/**
 * A request's field names lower-cased, by position: Node hands each request's names over as new
 * strings in the client's spelling, and a client sends the same names in the same order on every
 * request. Comparing with the name last seen at the position (a length and a few bytes) costs a
 * fraction of lower-casing it afresh (a new string each time), and the string given back is the
 * one kept from before, whose hash V8 has already computed: the set lookups that sort the field
 * and undici's look-up of the name in its table of known ones do not hash a new string each.
 */
export class LowerCaseMemo {
  private readonly raws: string[] = new Array<string>(POSITIONS).fill('');
  private readonly names: string[] = new Array<string>(POSITIONS).fill('');

  /** `raw.toLowerCase()`, for the field at `position` of the request. */
  name(position: number, raw: string): string {
    if (position >= POSITIONS) return raw.toLowerCase();
    if (raw === this.raws[position]) return this.names[position]!;
    const name = raw.toLowerCase();
    this.raws[position] = raw;
    this.names[position] = name;
    return name;
  }
}

