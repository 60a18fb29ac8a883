/**
 * One HTTP API request as a ShareDB client connection inside the server: its messages enter
 * through a MessageStream, exactly as a socket's frames do, so they meet the same frame
 * limits, message and id validation, source binding, access rules, rate and size limits
 * and refusal logs as every other client (the issue: "no route is added that bypasses
 * them"). Only the socket is missing: replies come back to `request()` instead.
 */
import { TandemError, TandemErrorCode, type WireError } from '../../client/protocol.js';
import type { Agent } from '../auth/agent-identity.js';
import type { Identity } from '../auth/identity.js';
import type { TandemBackend } from '../backend.js';
import type { ConnectionWho, RefusalLog } from '../limits/connection-refusals.js';
import { refusalOfReply } from '../limits/connection-refusals.js';
import { MessageStream } from '../transport/message-stream.js';

type Message = Record<string, unknown>;

/** The error a reply carries, as a TandemError-like value with its wire code. */
export class WireRefusal extends Error {
  constructor(readonly error: WireError & { retryAfterMs?: number }) {
    super(error.message);
  }
}

export interface WireSessionOptions {
  backend: TandemBackend;
  identity: Identity | null;
  who: ConnectionWho;
  maxFrameBytes: number;
  maxFrameDepth: number;
  refusals: RefusalLog;
  /** How long one request may wait for its reply. */
  timeoutMs?: number;
}

const HANDSHAKE = { a: 'hs', id: null, protocol: 1, protocolMinor: 2 };

export class WireSession {
  private readonly stream: MessageStream;
  private readonly waiting: Array<{ match: (m: Message) => boolean; resolve: (m: Message) => void; fail: (err: Error) => void }> = [];
  private readonly watchers: Array<{ match: (m: Message) => boolean; seen: Message[] }> = [];
  private closed = false;
  readonly agent: Agent;
  /** The connection's client id (ShareDB's `src` of its ops), known after open(). */
  clientId = '';
  private nextId = 1;

  constructor(private readonly options: WireSessionOptions) {
    this.stream = new MessageStream(
      {
        send: (message) => this.onReply(JSON.parse(JSON.stringify(message)) as Message),
        close: () => this.close(),
      },
      options.maxFrameBytes,
      options.maxFrameDepth,
      { onRefusal: (reply) => options.refusals.record(refusalOfReply(reply, this.stream.who)), who: { ...options.who, transport: 'http' } },
    );
    this.stream.identity = options.identity;
    this.agent = options.backend.listen(this.stream, null) as unknown as Agent;
  }

  /** Handshakes; resolves once ShareDB has answered (the client id is known). */
  async open(): Promise<void> {
    const reply = await this.request(HANDSHAKE, (m) => m.a === 'hs');
    this.clientId = String(reply.id);
  }

  /** A request id for `nf` / `nt` / `qf` messages. */
  requestId(): number {
    return this.nextId++;
  }

  /**
   * Sends `message` and resolves with the first reply `match` accepts; a reply carrying an
   * error rejects with a WireRefusal (its code and message as the client would see them).
   */
  request(message: Message, match: (m: Message) => boolean): Promise<Message> {
    if (this.closed) return Promise.reject(new TandemError(TandemErrorCode.SHUTTING_DOWN, 'the request was cut off'));
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        reject(new TandemError(TandemErrorCode.STORAGE_ERROR, `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const entry = {
        match,
        resolve: (reply: Message) => {
          clearTimeout(timer);
          if (reply.error) reject(new WireRefusal(reply.error as WireError));
          else resolve(reply);
        },
        fail: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const remove = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
      };
      this.waiting.push(entry);
      this.stream.receive(JSON.stringify(message));
    });
  }

  /** Collects, from now on, every message `match` accepts that no request is waiting for (presence). */
  watch(match: (m: Message) => boolean): readonly Message[] {
    const watcher = { match, seen: [] as Message[] };
    this.watchers.push(watcher);
    return watcher.seen;
  }

  private onReply(message: Message): void {
    for (const watcher of this.watchers) if (watcher.match(message)) watcher.seen.push(message);
    // Errors for frames ShareDB never saw have no action: they answer the oldest request.
    const i = message.a === undefined && message.error ? 0 : this.waiting.findIndex((w) => w.match(message));
    if (i < 0) return;
    const [entry] = this.waiting.splice(i, 1);
    entry!.resolve(message);
  }

  /**
   * Ends the connection (ShareDB closes the agent once its last request is handled). A
   * request still waiting is answered now, not by its timer.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const entry of this.waiting.splice(0)) entry.fail(new TandemError(TandemErrorCode.SHUTTING_DOWN, 'the request was cut off'));
    this.stream.clientClosed();
  }
}
