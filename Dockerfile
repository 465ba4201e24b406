# evald: `docker build -t evald .` then `docker run -p 8080:8080 evald`.
# Builds with the classic builder and with BuildKit alike (no cache mounts: the dependency layer
# below is the cache).

# ---- build: the release binary, and the few files the runtime stage needs ----
FROM rust:1.95.0-slim-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# Dependencies first, compiled against stub sources, so that an edit under src/ rebuilds evald
# alone. `docker/cargo-vendo[r]` matches only where scripts/docker-local-images vendored the crates
# (a machine whose containers cannot reach crates.io); elsewhere it copies nothing.
COPY Cargo.toml Cargo.lock docker/cargo-vendo[r] ./
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin evald \
    && rm -rf src target/release/evald target/release/.fingerprint/evald-*
COPY openapi ./openapi
COPY ui ./ui
COPY src ./src
# Then the runtime root: the binary, the shared libraries it links (ldd), its user, an empty /data.
RUN cargo build --release --locked --bin evald \
    && mkdir -p /rootfs/usr/local/bin /rootfs/etc /rootfs/data /rootfs/tmp \
    && cp target/release/evald /rootfs/usr/local/bin/ \
    && ldd target/release/evald | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' \
        | xargs -I{} cp --parents -L {} /rootfs/ \
    && echo 'evald:x:10001:10001:evald:/data:/nonexistent' > /rootfs/etc/passwd \
    && echo 'evald:x:10001:' > /rootfs/etc/group \
    && echo 'hosts: files dns' > /rootfs/etc/nsswitch.conf \
    && chown 10001:10001 /rootfs/data && chmod 1777 /rootfs/tmp

# ---- runtime: nothing but the binary and its libraries, as uid 10001 ----
FROM scratch AS runtime
LABEL org.opencontainers.image.title="evald" \
      org.opencontainers.image.description="HTTP evaluation microservice: exact classification metrics, losses, normalizations, activations and optimizer steps" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="scratch"
COPY --from=build /rootfs/ /
USER 10001:10001
# State is in memory unless EVALD_DATA_DIR is set: `-e EVALD_DATA_DIR=/data -v evald-data:/data`
# keeps the snapshot and the write-ahead log on the volume.
VOLUME ["/data"]
# The binary sets its allocator's purge delay itself (100 ms); MIMALLOC_PURGE_DELAY=0 trades
# some latency for a lower peak under a tight memory limit (README, Performance).
ENV EVALD_LISTEN=0.0.0.0:8080 \
    EVALD_HEALTHCHECK_ADDR=127.0.0.1:8080 \
    EVALD_LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 8080
# The binary probes its own /healthz (the image has no shell and no curl); EVALD_HEALTHCHECK_ADDR
# follows a changed EVALD_LISTEN port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/evald", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/evald"]
CMD ["serve"]
