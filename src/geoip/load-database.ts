/**
 * Opens a GeoIP database file and proves it sane before anyone routes with it: the file must
 * parse, and records sampled across its search tree must decode into a known layout with
 * plausible coordinates. A database that fails is refused with a reason naming the file.
 */
import { Reader, type Response } from 'maxmind';
import { GeoDatabaseError } from '../core/errors.js';
import { MAX_GEOIP_FILE_BYTES, NotARegularFile, readRegularFile } from '../core/regular-file.js';
import { sampleMmdbNetworks } from './mmdb-sample.js';
import { normalizeGeoRecord, UNRECOGNISED_LAYOUT } from './normalize-record.js';

export interface LoadedDatabase {
  readonly reader: Reader<Response>;
  readonly databaseType: string;
  /** When the database was built; null when its metadata gives no valid time. */
  readonly buildEpoch: Date | null;
  readonly sampledRecords: number;
}

export async function loadGeoDatabase(file: string): Promise<LoadedDatabase> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(file, MAX_GEOIP_FILE_BYTES);
  } catch (err) {
    if (err instanceof NotARegularFile) throw new GeoDatabaseError(file, `expected a MaxMind DB file, found ${err.found}`);
    const code = (err as NodeJS.ErrnoException).code;
    throw new GeoDatabaseError(file, code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(err)})`);
  }
  return openGeoDatabase(file, bytes);
}

/** Validates an in-memory database; `file` only names it in errors. */
export function openGeoDatabase(file: string, bytes: Buffer): LoadedDatabase {
  let reader: Reader<Response>;
  try {
    reader = new Reader<Response>(bytes);
  } catch (err) {
    throw new GeoDatabaseError(file, `not a MaxMind DB file (${(err as Error).message})`);
  }
  const { metadata } = reader;
  const sample = sampleMmdbNetworks(bytes, metadata, { samples: 256, seed: 1 });
  if (!sample.ok) throw new GeoDatabaseError(file, `corrupt search tree: ${sample.reason}`);
  let recognised = 0;
  let located = 0;
  for (const address of sample.addresses) {
    let record: unknown;
    try {
      record = reader.get(address);
    } catch (err) {
      throw new GeoDatabaseError(file, `record for ${address} does not decode (${(err as Error).message})`);
    }
    if (record === null) continue;
    const normalized = normalizeGeoRecord(record);
    if (!normalized.ok) {
      // An ASN or ISP database opens and decodes like a City one: its type says what was given instead.
      const kind = normalized.reason === UNRECOGNISED_LAYOUT ? `; the database's type is "${metadata.databaseType}", expected a City or Country database` : '';
      throw new GeoDatabaseError(file, `record for ${address}: ${normalized.reason}${kind}`);
    }
    recognised++;
    if (normalized.facts.country !== null || normalized.facts.lat !== null) located++;
  }
  if (recognised === 0) throw new GeoDatabaseError(file, 'no record could be read from the database');
  // Records of a known layout that place nobody (continent or traits only) make a database that
  // loads, reloads over a good one, and then locates no client at all.
  if (located === 0) throw new GeoDatabaseError(file, `none of the ${recognised} records sampled names a country or coordinates`);
  return {
    reader,
    databaseType: metadata.databaseType,
    // A file without a build_epoch, or one in micro- or nanoseconds, gives an Invalid Date (mmdb-lib
    // multiplies what it finds by 1,000): the records serve all the same; formatting it threw.
    buildEpoch: Number.isNaN(metadata.buildEpoch.getTime()) ? null : metadata.buildEpoch,
    sampledRecords: recognised,
  };
}
