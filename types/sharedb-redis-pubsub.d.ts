// sharedb-redis-pubsub ships no types; server/pubsub/redis.ts is its one typed boundary.
declare module 'sharedb-redis-pubsub' {
  const RedisPubSub: unknown;
  export default RedisPubSub;
}
