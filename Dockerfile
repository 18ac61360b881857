# syntax=docker/dockerfile:1.7
#
# hosting: one image, two binaries (hosting-app server, hostctl CLI).
#
#   docker build -t hosting-app:dev .
#   docker build --build-arg VERSION=1.2.3 --build-arg VCS_REF=$(git rev-parse HEAD) -t ghcr.io/OWNER/hosting-app:1.2.3 .
#
# Stages:
#   chef     Rust toolchain + cargo-chef (pinned)
#   planner  computes the dependency "recipe" from Cargo.toml/Cargo.lock only
#   builder  builds the dependencies from the recipe (cached layer: it only
#            changes when Cargo.lock or a manifest changes), then the workspace
#   probe    a static busybox, used only for the HEALTHCHECK's HTTP GET
#   runtime  distroless cc (glibc, CA certs, no shell, no package manager),
#            runs as uid 65532 (nonroot)
#
# The builder and the runtime must share a Debian release (bookworm = debian12)
# so the glibc the binaries were linked against is present at run time.

ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
ARG CARGO_CHEF_VERSION
WORKDIR /src
RUN cargo install --locked cargo-chef --version "${CARGO_CHEF_VERSION}"

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# Dependencies first: this layer is reused until Cargo.lock or a manifest changes.
COPY --from=planner /src/recipe.json recipe.json
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo chef cook --release --locked --recipe-path recipe.json -p hosting-app -p hostctl
# Then the workspace itself (--locked: Cargo.lock is the source of truth).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked -p hosting-app -p hostctl \
 && install -D -m 0755 target/release/hosting-app /out/hosting-app \
 && install -D -m 0755 target/release/hostctl /out/hostctl \
 && install -d -m 0750 /out/data

# Statically linked busybox: distroless has no shell, curl or wget, and Docker's
# HEALTHCHECK needs a command to run. Kubernetes uses httpGet probes instead.
FROM busybox:1.36.1-musl AS probe

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=dev
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.title="hosting-app" \
      org.opencontainers.image.description="Self-hosted multi-tenant static-site hosting: hosting-app server and hostctl CLI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="hosting" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=probe /bin/busybox /usr/local/bin/busybox
COPY --from=builder /out/hosting-app /out/hostctl /usr/local/bin/
COPY --from=builder --chown=65532:65532 /out/data /data

# The MIMALLOC_* settings are read by the allocator when the process starts, before `main`:
# its first arena committed lazily and freed pages purged at once, so memory a churning cache
# frees goes back to the system (BENCHMARKS.md, 3,000 sites: peak RSS 139-148 -> 100 MiB at
# the same CPU per request).
ENV HOSTING_LISTEN=0.0.0.0:3000 \
    HOSTING_MGMT_LISTEN=0.0.0.0:9000 \
    HOSTING_DATA_DIR=/data \
    HOSTING_LOG_FORMAT=json \
    MIMALLOC_ARENA_EAGER_COMMIT=0 \
    MIMALLOC_PURGE_DELAY=0

# 3000: public listener (API, dashboard, sites). 9000: management (/metrics, /healthz, /readyz), internal only.
EXPOSE 3000 9000
VOLUME ["/data"]
USER 65532:65532
WORKDIR /data

# Liveness only (/healthz does not depend on PostgreSQL or Redis); readiness is /readyz, used by the proxies and k8s.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9000/healthz"]

# SIGTERM: the app turns not-ready for HOSTING_SHUTDOWN_DRAIN seconds, then drains and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hosting-app"]
CMD ["serve"]
