# syntax=docker/dockerfile:1

# ---- build stage: compile the release binary ----
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Manifests first so the dependency download is cached across source edits.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for b in metrics losses nn; do echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo fetch --locked
COPY src ./src
COPY openapi ./openapi
COPY benches ./benches
RUN cargo build --release --locked --bin evald

# ---- runtime stage: slim, non-root ----
FROM debian:bookworm-slim AS runtime
RUN useradd --system --uid 10001 --user-group --no-create-home evald \
    && mkdir -p /data && chown evald:evald /data
COPY --from=build /src/target/release/evald /usr/local/bin/evald
USER 10001:10001
# The binary sets its allocator's purge delay itself (100 ms); MIMALLOC_PURGE_DELAY=0 trades
# some latency for a lower peak under a tight memory limit (README, Performance).
ENV EVALD_LISTEN=0.0.0.0:8080 \
    EVALD_LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 8080
# The binary probes itself: the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["evald", "healthcheck", "--addr", "127.0.0.1:8080"]
ENTRYPOINT ["evald"]
CMD ["serve"]
