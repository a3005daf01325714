/**
 * Errors that mean "this configuration cannot work" — a bad flag, file, certificate, GeoIP
 * database or registry — as opposed to a bug. The CLI prints their message as one line and exits 2;
 * `validate` collects them as problems.
 */
import { ConfigError, GeoDatabaseError, UsageError } from '../core/errors.js';
import { CertificateError } from '../ingress/certificates/certificate-pair.js';
import { SchemaVersionError } from '../registry/redis-registry.js';
import { RegistryUnreachableError } from './open-registry.js';

const CONFIGURATION_ERRORS = [UsageError, ConfigError, GeoDatabaseError, CertificateError, RegistryUnreachableError, SchemaVersionError];

export function isConfigurationError(err: unknown): err is Error {
  return CONFIGURATION_ERRORS.some((kind) => err instanceof kind);
}
