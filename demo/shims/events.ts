/**
 * The part of Node's `events` module that ShareDB's browser client uses, for the browser
 * bundles (esbuild aliases `events` here; the npm `events` polyfill would do as well but is
 * not a dependency).
 *
 * ShareDB copies EventEmitter.prototype's enumerable keys onto its own classes (its
 * `emitter.mixin`), so the methods are assigned to the prototype, not declared in a class
 * body (class methods are not enumerable). It also reads `_eventsCount` (the number of event
 * names that have listeners) in its presence emitter.
 */
type Listener = (...args: unknown[]) => void;

interface EmitterState {
  _events?: Map<string | symbol, Listener[]>;
  _eventsCount?: number;
}

export interface EventEmitter extends EmitterState {
  on(event: string | symbol, listener: Listener): this;
  addListener(event: string | symbol, listener: Listener): this;
  prependListener(event: string | symbol, listener: Listener): this;
  once(event: string | symbol, listener: Listener): this;
  off(event: string | symbol, listener: Listener): this;
  removeListener(event: string | symbol, listener: Listener): this;
  removeAllListeners(event?: string | symbol): this;
  emit(event: string | symbol, ...args: unknown[]): boolean;
  listeners(event: string | symbol): Listener[];
  listenerCount(event: string | symbol): number;
  setMaxListeners(n: number): this;
}

// A constructor function, not a class: ShareDB's mixin and `new EventEmitter()` both work.
export const EventEmitter = function EventEmitter(this: EmitterState) {
  this._events = new Map();
  this._eventsCount = 0;
} as unknown as { new (): EventEmitter; prototype: EventEmitter };

function table(self: EmitterState): Map<string | symbol, Listener[]> {
  // Classes that mixed the methods in never ran the constructor.
  if (!self._events) {
    self._events = new Map();
    self._eventsCount = 0;
  }
  return self._events;
}

function add(self: EventEmitter, event: string | symbol, listener: Listener, prepend: boolean): EventEmitter {
  const events = table(self);
  const list = events.get(event);
  if (!list) {
    events.set(event, [listener]);
    self._eventsCount = events.size;
  } else if (prepend) list.unshift(listener);
  else list.push(listener);
  return self;
}

const proto = EventEmitter.prototype;
proto.on = function (event, listener) {
  return add(this, event, listener, false);
};
proto.addListener = proto.on;
proto.prependListener = function (event, listener) {
  return add(this, event, listener, true);
};
proto.once = function (event, listener) {
  const wrapper: Listener & { listener?: Listener } = (...args) => {
    this.removeListener(event, wrapper);
    listener.apply(this, args);
  };
  wrapper.listener = listener;
  return this.on(event, wrapper);
};
proto.removeListener = function (event, listener) {
  const events = table(this);
  const list = events.get(event);
  if (!list) return this;
  const i = list.findIndex((l) => l === listener || (l as { listener?: Listener }).listener === listener);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) events.delete(event);
  this._eventsCount = events.size;
  return this;
};
proto.off = proto.removeListener;
proto.removeAllListeners = function (event) {
  const events = table(this);
  if (event === undefined) events.clear();
  else events.delete(event);
  this._eventsCount = events.size;
  return this;
};
proto.emit = function (event, ...args) {
  const list = table(this).get(event);
  if (!list || list.length === 0) {
    // Node's rule, which ShareDB relies on: an unhandled 'error' throws.
    if (event === 'error') throw args[0] instanceof Error ? args[0] : new Error(`Unhandled error: ${String(args[0])}`);
    return false;
  }
  for (const listener of [...list]) listener.apply(this, args);
  return true;
};
proto.listeners = function (event) {
  return [...(table(this).get(event) ?? [])];
};
proto.listenerCount = function (event) {
  return table(this).get(event)?.length ?? 0;
};
proto.setMaxListeners = function () {
  return this;
};

export default EventEmitter;
