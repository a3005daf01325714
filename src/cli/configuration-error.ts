/**
 * Errors that mean "this configuration cannot work" — a bad flag, file, certificate, GeoIP
 * database, registry or port — as opposed to a bug: those the catalogue gives exit code 2
 * (core/errors.ts). The CLI prints their message as one line and exits 2; `validate` collects
 * them as problems.
 */
import { describeError } from '../core/errors.js';

export function isConfigurationError(err: unknown): err is Error {
  return describeError(err).exitCode === 2;
}
