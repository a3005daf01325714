# The edge-router image: one image for every role of docker-compose.yml (router, orchestrator,
# load generator), chosen by the command. Two stages: the build stage has the dev dependencies
# (TypeScript) and compiles; the runtime stage installs production dependencies only and copies
# the compiled output, so no compiler, test runner or source ends up in the final image.

# Base images as build arguments: where the registry's images cannot be pulled, build stand-ins
# (e.g. Debian bookworm with Node 20) and pass them with --build-arg. EXTRA_CA_CERTS: a PEM bundle
# (a file in the build context) for npm behind a TLS-inspecting proxy; empty = none.
ARG NODE_IMAGE=node:20-bookworm-slim
ARG NODE_RUNTIME_IMAGE=node:20-bookworm-slim

# --- build: full install, compile src/ to dist/ -------------------------------------------------
FROM ${NODE_IMAGE} AS build
ARG EXTRA_CA_CERTS=
WORKDIR /app
COPY package.json package-lock.json ${EXTRA_CA_CERTS} ./
RUN if [ -n "$EXTRA_CA_CERTS" ]; then export NODE_EXTRA_CA_CERTS="/app/$(basename "$EXTRA_CA_CERTS")"; fi; npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies and compiled code, run as the unprivileged user node -------
FROM ${NODE_RUNTIME_IMAGE} AS runtime
ARG EXTRA_CA_CERTS=
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ${EXTRA_CA_CERTS} ./
# --ignore-scripts: no dependency needs an install script, so none gets to run. The extra CA
# bundle serves npm only: it is deleted from the final file system, but the COPY above keeps it in
# a lower layer of the image. Certificates only (they are public), never a private key.
RUN if [ -n "$EXTRA_CA_CERTS" ]; then export NODE_EXTRA_CA_CERTS="/app/$(basename "$EXTRA_CA_CERTS")"; fi; \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force && \
    if [ -n "$EXTRA_CA_CERTS" ]; then rm -f "/app/$(basename "$EXTRA_CA_CERTS")"; fi
COPY --from=build /app/dist ./dist
# The dashboard's page files are read at start (tsc copies no assets).
COPY src/dashboard/browser ./src/dashboard/browser
COPY bin ./bin
# regions.json (bare-metal addresses) and regions.compose.json (compose service names), and the
# simulation GeoIP database, found through the package root like an installed package finds them.
COPY regions*.json ./
COPY schema ./schema
COPY geo ./geo
# The files stay owned by root: the process can read its code and data but not change them.
USER node
# Router: 8443 HTTPS, 8080 plain HTTP, 9090 admin. Orchestrator: 7000 (regions.compose.json).
# Unprivileged ports, because a non-root process cannot bind 443/80 without a capability;
# docker-compose.yml publishes 8443 as the host's 443.
EXPOSE 8443 8080 9090 7000
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["--help"]
