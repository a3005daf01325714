import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { regionsJsonSchema, regionsJsonSchemaText } from '../../src/config/regions-json-schema.js';

const SHIPPED = 'schema/regions.schema.json';

function validator() {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  return ajv.compile(regionsJsonSchema());
}

describe('the JSON Schema of regions.json', () => {
  it('is current: schema/regions.schema.json is what the zod schema generates (else run `npm run schema`)', () => {
    expect(readFileSync(SHIPPED, 'utf8')).toBe(regionsJsonSchemaText());
  });

  it('accepts the bundled regions files, which point editors at it (relative to where each lies)', () => {
    const validate = validator();
    for (const file of ['regions.json', 'regions.compose.json', 'deploy/kubernetes/base/regions.json', 'deploy/kubernetes/overlays/simulation/regions.simulation.json']) {
      const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      expect(typeof doc.$schema, file).toBe('string');
      expect(resolve(dirname(file), doc.$schema as string), file).toBe(resolve(SHIPPED));
      expect(validate(doc), `${file}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  it('refuses what the loader refuses that a schema can say: unknown fields, bad region ids, a missing region list', () => {
    const validate = validator();
    const good = JSON.parse(readFileSync('regions.json', 'utf8')) as { regions: Array<Record<string, unknown>> };
    const typo = { ...good, defaultRegoin: 'nyc' };
    const badId = { ...good, regions: [{ ...good.regions[0], id: 'Frankfurt!' }] };
    const { regions: _omit, ...noRegions } = good;
    for (const doc of [typo, badId, noRegions]) expect(validate(doc)).toBe(false);
  });
});
