/**
 * Which of a secret's two flags gives it (`--x-token` or `--x-token-file`, each also an environment
 * variable), by one rule for every secret: a flag beats the environment, whichever of the two kinds
 * each gives (a token file mounted into the environment must not override a token typed on the
 * command line, or the other way round), and both kinds at one level is ambiguous, so it is refused
 * rather than one picked silently.
 */
import { UsageError } from '../core/errors.js';
import { sourceOf, stringFlag, type ParsedFlags } from './flags.js';

export function secretSourceOf(flags: ParsedFlags, valueFlag: string, fileFlag: string, what: string): 'value' | 'file' | undefined {
  const fromEnv = (name: string) => {
    const source = flags.sources.get(name);
    // A value set by the program (start's generated token) has no source: it stands for a flag.
    return source !== undefined && !source.startsWith('--');
  };
  const given = (name: string) => stringFlag(flags, name) !== undefined;
  for (const envLevel of [false, true]) {
    const value = given(valueFlag) && fromEnv(valueFlag) === envLevel;
    const file = given(fileFlag) && fromEnv(fileFlag) === envLevel;
    if (value && file) throw new UsageError(`${sourceOf(flags, valueFlag)} and ${sourceOf(flags, fileFlag)} both give ${what}: give one of them`);
    if (file) return 'file';
    if (value) return 'value';
  }
  return undefined;
}
