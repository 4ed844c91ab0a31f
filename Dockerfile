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
# The code stays root's (read-only for the gateway's user): a compromised
# process cannot rewrite what it runs.
FROM node:20-bookworm-slim AS runtime
# The bundled table is a default: TURNOUT_CONFIG (or --config) names another.
ENV NODE_ENV=production TURNOUT_CONFIG=/app/routes.yaml
WORKDIR /app
RUN groupadd --system --gid 10001 turnout \
 && useradd --system --uid 10001 --gid turnout --home-dir /app --shell /usr/sbin/nologin turnout
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY proto ./proto
COPY routes.yaml ./routes.yaml
USER turnout:turnout
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "dist/src/cli/main.js", "healthcheck"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
