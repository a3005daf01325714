/**
 * JSON files people write or keep (regions.json, registry backups): parsed, or refused in one
 * line saying where and why the text stops being JSON: `line 21, column 3: expected a field name
 * in double quotes, found "}"`. JSON.parse says why but, on Node 20, not always where, and its
 * message quotes the text around the error, which spans lines. The scan below runs only after
 * JSON.parse has refused the text.
 */
import { ConfigError } from './errors.js';

/** Thrown inside the scan at the first character that cannot continue a JSON text. */
class Stop extends Error {
  constructor(
    readonly at: number,
    readonly expected: string,
  ) {
    super(expected);
  }
}

const SPACE = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const ESCAPE = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y;

class Scanner {
  private at = 0;
  /** The field names seen so far in each open object, innermost last; kept only when asked to find repeats. */
  private readonly names: Set<string>[] = [];
  constructor(
    private readonly text: string,
    private readonly uniqueNames = false,
  ) {}

  document(): void {
    this.value();
    this.space();
    if (this.at < this.text.length) this.stop('the end of the file');
  }

  /**
   * One value, containers included. Iterative, with the open containers on a stack of its own:
   * JSON.parse takes any depth, and a recursive scan of a broken file 5,000 brackets deep would
   * overflow the call stack instead of saying where the text goes wrong.
   */
  private value(): void {
    const open: Array<'}' | ']'> = [];
    for (;;) {
      this.space();
      const c = this.text[this.at];
      if (c === '{' || c === '[') {
        const close = c === '{' ? '}' : ']';
        this.at++;
        this.space();
        if (!this.word(close)) {
          open.push(close);
          if (close === '}') {
            if (this.uniqueNames) this.names.push(new Set());
            this.fieldName();
          }
          continue; // to the first member's value
        }
      } else if (c === '"') this.string();
      else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) this.match(NUMBER, 'a number');
      else if (!['true', 'false', 'null'].some((word) => this.word(word))) this.stop('a value');
      // A value ended: close the containers it ends, up to one that takes another member.
      for (;;) {
        const close = open.at(-1);
        if (close === undefined) return;
        this.space();
        if (this.word(',')) {
          if (close === '}') this.fieldName();
          break;
        }
        if (!this.word(close)) this.stop(`"," or "${close}"`);
        if (open.pop() === '}' && this.uniqueNames) this.names.pop();
      }
    }
  }

  /** A field up to its value: `"name":`. */
  private fieldName(): void {
    this.space();
    if (this.text[this.at] !== '"') this.stop('a field name in double quotes');
    const start = this.at;
    this.string();
    const seen = this.names.at(-1);
    if (seen !== undefined) {
      const name = JSON.parse(this.text.slice(start, this.at)) as string;
      if (seen.has(name)) throw new Stop(start, `the field ${JSON.stringify(name)} appears twice in this object (the later one would be read, the earlier ignored)`);
      seen.add(name);
    }
    this.space();
    if (!this.word(':')) this.stop('":"');
  }

  private string(): void {
    this.at++;
    for (;;) {
      const c = this.text[this.at];
      if (c === undefined) this.stop('a closing quote');
      if (c === '"') return void this.at++;
      if (c === '\\') this.match(ESCAPE, 'an escape such as \\n, \\" or \\u00e9');
      else if (c < ' ') this.stop('an escape (\\n, \\t) for a control character in a string');
      else this.at++;
    }
  }

  private match(pattern: RegExp, expected: string): void {
    pattern.lastIndex = this.at;
    if (!pattern.test(this.text)) this.stop(expected);
    this.at = pattern.lastIndex;
  }

  private word(word: string): boolean {
    if (!this.text.startsWith(word, this.at)) return false;
    this.at += word.length;
    return true;
  }

  private space(): void {
    this.match(SPACE, 'white space');
  }

  private stop(expected: string): never {
    throw new Stop(this.at, expected);
  }
}

/** `line 2, column 5: expected ":", found "="`, or undefined when the text is JSON after all. */
export function describeJsonError(text: string): string | undefined {
  try {
    new Scanner(text).document();
    return undefined;
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    const before = text.slice(0, err.at);
    const line = before.split('\n').length;
    const column = err.at - before.lastIndexOf('\n');
    const found = err.at < text.length ? JSON.stringify(String.fromCodePoint(text.codePointAt(err.at)!)) : 'the end of the file';
    return `line ${line}, column ${column}: expected ${err.expected}, found ${found}`;
  }
}

function lineAndColumn(text: string, at: number): string {
  const before = text.slice(0, at);
  return `line ${before.split('\n').length}, column ${at - before.lastIndexOf('\n')}`;
}

/**
 * `line 3, column 5: the field "GB" appears twice in this object (…)`, or undefined when every
 * object's field names are unique. JSON.parse keeps the last of a repeated name and says nothing,
 * so a second "regions" or "GB" in a hand-edited file silently replaced the first. Only for text
 * JSON.parse has read.
 */
export function describeRepeatedName(text: string): string | undefined {
  try {
    new Scanner(text, true).document();
    return undefined;
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    return `${lineAndColumn(text, err.at)}: ${err.expected}`;
  }
}

/**
 * `text` read from `file` as JSON; a syntax error is a ConfigError `<file>: not valid JSON at line L,
 * column C: …`, and a field named twice in one object `<file>: line L, column C: the field … appears twice …`.
 */
export function parseJsonFile(file: string, text: string): unknown {
  // Editors on Windows may save a byte-order mark, which JSON.parse refuses: it carries no meaning.
  const json = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    const where = describeJsonError(json);
    throw new ConfigError(`${file}: not valid JSON ${where === undefined ? `(${(err as Error).message})` : `at ${where}`}`);
  }
  const repeated = describeRepeatedName(json);
  if (repeated !== undefined) throw new ConfigError(`${file}: ${repeated}`);
  return value;
}

/**
 * The value under an own "__proto__" key of the object `json[field]`, or undefined when it has
 * none. JSON.parse makes that key an own one, but zod's records skip it: a file checked through
 * zod alone had it neither checked nor kept.
 */
export function protoKeyValue(json: unknown, field: string): unknown {
  const map = typeof json === 'object' && json !== null ? (json as Record<string, unknown>)[field] : undefined;
  return typeof map === 'object' && map !== null && Object.hasOwn(map, '__proto__') ? (map as Record<string, unknown>)['__proto__'] : undefined;
}
