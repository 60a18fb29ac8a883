# syntax=docker/dockerfile:1
# Tandem server image. Two stages: the first installs every dependency from the lock file
# and builds the esbuild bundle (dist/tandem.js, plus the demo page when present); the
# second carries only production dependencies, the bundle and the launcher.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# Lock file first, so the dependency layer is cached until dependencies change (the client
# workspace's package.json is part of the lock's tree).
COPY package.json package-lock.json ./
COPY client/package.json ./client/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
# The default store (sqlite:./data/tandem.db) needs a folder the unprivileged user can write.
RUN mkdir -p data && chown node:node data
USER node
EXPOSE 8080
# Ready = store reachable and not draining (Redis down only makes it "degraded", still 200).
HEALTHCHECK --interval=5s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself, which starts the graceful drain.
CMD ["node", "bin/tandem.js", "serve"]
