/**
 * The one function of Node's `util` that ShareDB's shared util.js looks up at load time
 * (`util.inherits`); its browser client never calls it, but the lookup throws without it.
 */
export function inherits(ctor: { prototype: object; super_?: unknown }, superCtor: { prototype: object }): void {
  ctor.super_ = superCtor;
  Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
}

export default { inherits };
