# syntax=docker/dockerfile:1
# Turnout gateway image. The same image also runs the examples (compose.yaml):
#   node dist/examples/legacy.js   /   node dist/examples/worker.js

# --- build: compile TypeScript, then drop the dev dependencies -------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
COPY examples ./examples
RUN npm run build
RUN npm prune --omit=dev

# --- runtime: only what `node dist/src/cli/main.js` needs ------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
RUN groupadd --system --gid 10001 turnout \
 && useradd --system --uid 10001 --gid turnout --home-dir /app --shell /usr/sbin/nologin turnout
COPY --from=build --chown=turnout:turnout /app/package.json ./package.json
COPY --from=build --chown=turnout:turnout /app/node_modules ./node_modules
COPY --from=build --chown=turnout:turnout /app/dist ./dist
COPY --chown=turnout:turnout proto ./proto
COPY --chown=turnout:turnout routes.yaml ./routes.yaml
USER turnout:turnout
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve", "--config", "/app/routes.yaml"]
