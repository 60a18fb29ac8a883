import type { Path } from '../../ot-types/index.js';
import type { Identity } from './identity.js';
import { ruleAllows, rulesFor, type AccessAction, type RulesFile } from './rules.js';

/** What the programmatic access hook is asked. */
export interface AccessRequest {
  /** The verified user, or null for an anonymous connection (AUTH=none). */
  readonly identity: Identity | null;
  readonly collection: string;
  readonly id: string;
  readonly action: AccessAction;
  /** For create, write and delete: the submitted op (json1 op, `{type, data}` or `true`). */
  readonly op?: unknown;
  /** For write and delete: the document before the op. For read: the document, when loaded. */
  readonly before?: unknown;
  /** For create and write: the document after the op. */
  readonly after?: unknown;
}

/**
 * Decides what the rules file cannot express; called after the rules allowed the action
 * (both must allow). Return false (or a rejected promise) to refuse with TANDEM_FORBIDDEN.
 * A read decision holds for the connection's lifetime per document: ops broadcast to a
 * subscriber are not re-asked.
 */
export type AccessHook = (request: AccessRequest) => boolean | Promise<boolean>;

/** The access rules of one server: the rules file (if any) narrowed further by the hook. */
export class AccessPolicy {
  constructor(
    private readonly rules: RulesFile | null,
    private readonly hook: AccessHook | null,
  ) {}

  /** True when nothing narrows access: every check can be skipped. */
  get open(): boolean {
    return this.rules === null && this.hook === null;
  }

  /** True when the hook must be asked (it may look at documents). */
  get hasHook(): boolean {
    return this.hook !== null;
  }

  /** The rules file's verdict alone; cheap and synchronous. */
  rulesAllow(identity: Identity | null, collection: string, id: string, action: AccessAction): boolean {
    if (this.rules === null) return true;
    const rules = rulesFor(this.rules, collection);
    return rules !== null && ruleAllows(rules[action], identity, id);
  }

  /**
   * True when every document of the collection is readable by this user whatever its id:
   * counts and aggregates over it leak nothing.
   */
  readsWholeCollection(identity: Identity | null, collection: string): boolean {
    if (this.hook !== null) return false;
    if (this.rules === null) return true;
    const rule = rulesFor(this.rules, collection)?.read;
    return rule === 'everyone' || (rule === 'authenticated' && identity !== null);
  }

  readOnlyPaths(collection: string): readonly Path[] {
    if (this.rules === null) return [];
    return rulesFor(this.rules, collection)?.readOnlyPaths ?? [];
  }

  /** The rules, then the hook. */
  async allows(request: AccessRequest): Promise<boolean> {
    if (!this.rulesAllow(request.identity, request.collection, request.id, request.action)) return false;
    if (this.hook === null) return true;
    try {
      return (await this.hook(request)) === true;
    } catch {
      return false;
    }
  }
}
