import { readFileSync } from 'node:fs';
import type { Path } from '../../ot-types/index.js';
import { ConfigError } from '../config.js';
import type { Identity } from './identity.js';

/** What a rule decides about. `write` is an op on an existing document. */
export type AccessAction = 'read' | 'create' | 'write' | 'delete';
export const ACCESS_ACTIONS: readonly AccessAction[] = ['read', 'create', 'write', 'delete'];

/**
 * One condition of a rules file:
 * - `"everyone"`, `"authenticated"`, `"nobody"`;
 * - `{"claim": "role", "in": ["editor", "owner"]}` or `{"claim": "role", "equals": "owner"}`
 *   (a claim that is an array matches when any element does);
 * - `{"idEqualsClaim": "sub"}`: the document id is the claim's value;
 * - `{"idPrefixClaim": "tenant", "separator": "/"}`: the id is the claim's value followed by
 *   the separator (default `/`) and anything;
 * - `{"anyOf": [rule, …]}`, `{"allOf": [rule, …]}`.
 */
export type Rule =
  | 'everyone'
  | 'authenticated'
  | 'nobody'
  | { claim: string; in: readonly (string | number | boolean)[] }
  | { claim: string; equals: string | number | boolean }
  | { idEqualsClaim: string }
  | { idPrefixClaim: string; separator?: string }
  | { anyOf: readonly Rule[] }
  | { allOf: readonly Rule[] };

/** The rules of one collection; a missing action is refused. */
export interface CollectionRules {
  read?: Rule;
  create?: Rule;
  write?: Rule;
  delete?: Rule;
  /** Paths inside a document no op may change once it exists (e.g. `[["meta"]]`). */
  readOnlyPaths?: readonly Path[];
}

/** A rules file: collections by name; `"*"` covers every collection not named. */
export interface RulesFile {
  collections: Record<string, CollectionRules>;
}

function fail(where: string, message: string): never {
  throw new ConfigError(`RULES_FILE ${where}: ${message}`);
}

const SCALAR = new Set(['string', 'number', 'boolean']);

function checkRule(rule: unknown, where: string): Rule {
  if (rule === 'everyone' || rule === 'authenticated' || rule === 'nobody') return rule;
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) {
    return fail(where, 'a rule is "everyone", "authenticated", "nobody" or an object (see README)');
  }
  const r = rule as Record<string, unknown>;
  const keys = Object.keys(r).sort().join(',');
  if (keys === 'claim,in' && typeof r.claim === 'string' && Array.isArray(r.in) && r.in.every((v) => SCALAR.has(typeof v))) {
    return rule as Rule;
  }
  if (keys === 'claim,equals' && typeof r.claim === 'string' && SCALAR.has(typeof r.equals)) return rule as Rule;
  if (keys === 'idEqualsClaim' && typeof r.idEqualsClaim === 'string') return rule as Rule;
  if (
    (keys === 'idPrefixClaim' || keys === 'idPrefixClaim,separator') &&
    typeof r.idPrefixClaim === 'string' &&
    (r.separator === undefined || (typeof r.separator === 'string' && r.separator !== ''))
  ) {
    return rule as Rule;
  }
  if ((keys === 'anyOf' || keys === 'allOf') && Array.isArray(r[keys])) {
    (r[keys] as unknown[]).forEach((inner, i) => checkRule(inner, `${where}.${keys}[${i}]`));
    return rule as Rule;
  }
  return fail(where, `unknown rule ${JSON.stringify(rule)}`);
}

/** Validates parsed rules; every mistake is a TANDEM_BAD_CONFIG naming where it is. */
export function checkRules(value: unknown): RulesFile {
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as RulesFile).collections !== 'object' ||
    (value as RulesFile).collections === null
  ) {
    return fail('', 'must be an object with a "collections" object');
  }
  for (const [name, rules] of Object.entries((value as RulesFile).collections)) {
    if (typeof rules !== 'object' || rules === null) fail(name, 'must be an object');
    for (const [key, rule] of Object.entries(rules)) {
      if (key === 'readOnlyPaths') {
        const paths = rule as unknown;
        if (
          !Array.isArray(paths) ||
          !paths.every((p) => Array.isArray(p) && p.length > 0 && p.every((k) => typeof k === 'string' || Number.isInteger(k)))
        ) {
          fail(`${name}.readOnlyPaths`, 'must be a list of non-empty paths, e.g. [["meta"]]');
        }
      } else if ((ACCESS_ACTIONS as readonly string[]).includes(key)) {
        checkRule(rule, `${name}.${key}`);
      } else {
        fail(`${name}.${key}`, `unknown key (expected ${ACCESS_ACTIONS.join(', ')}, readOnlyPaths)`);
      }
    }
  }
  return value as RulesFile;
}

export function loadRulesFile(path: string): RulesFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return fail(path, `cannot be read: ${(err as Error).message}`);
  }
  try {
    return checkRules(JSON.parse(text));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    return fail(path, `is not JSON: ${(err as Error).message}`);
  }
}

function claimValues(identity: Identity | null, claim: string): unknown[] {
  const value = identity?.claims[claim];
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** Evaluates one rule for a user (null: anonymous) and a document id. */
export function ruleAllows(rule: Rule | undefined, identity: Identity | null, id: string): boolean {
  if (rule === undefined || rule === 'nobody') return false;
  if (rule === 'everyone') return true;
  if (rule === 'authenticated') return identity !== null;
  if ('anyOf' in rule) return rule.anyOf.some((r) => ruleAllows(r, identity, id));
  if ('allOf' in rule) return rule.allOf.every((r) => ruleAllows(r, identity, id));
  if ('idEqualsClaim' in rule) return claimValues(identity, rule.idEqualsClaim).some((v) => typeof v === 'string' && v === id);
  if ('idPrefixClaim' in rule) {
    const separator = rule.separator ?? '/';
    return claimValues(identity, rule.idPrefixClaim).some((v) => typeof v === 'string' && v !== '' && id.startsWith(v + separator));
  }
  const values = claimValues(identity, rule.claim);
  if ('equals' in rule) return values.some((v) => v === rule.equals);
  return values.some((v) => rule.in.includes(v as string | number | boolean));
}

/** The rules that apply to a collection, or null when the file does not cover it (refused). */
export function rulesFor(file: RulesFile, collection: string): CollectionRules | null {
  const own = Object.hasOwn(file.collections, collection) ? file.collections[collection] : undefined;
  return own ?? file.collections['*'] ?? null;
}
