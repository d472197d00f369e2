# Multi-stage build: compile in the Rust image, run on distroless.
#
# The runtime image has no shell and no package manager; it runs as a numeric non-root user (so
# Kubernetes' runAsNonRoot can verify it), writes nothing to its filesystem (logs to stderr, the
# audit log to stdout), and so runs with a read-only root filesystem. Health checks are HTTP on
# the admin port (/healthz, /readyz); the image needs no shell for them.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin dataverse-gateway \
 && strip target/release/dataverse-gateway

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="dataverse-gateway" \
      org.opencontainers.image.description="Policy gateway between AI agents and Microsoft Dataverse"
COPY --from=build /src/target/release/dataverse-gateway /usr/local/bin/dataverse-gateway
COPY gateway.yaml /etc/dataverse-gateway/gateway.yaml
# distroless "nonroot" is 65532:65532
USER 65532:65532
# 8080: agents; 9090: admin (/metrics, /healthz, /readyz). Bind to 0.0.0.0 in a container config.
EXPOSE 8080 9090
# SIGTERM: stop accepting, finish requests in flight for shutdown_grace, exit 0. SIGHUP: reload.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/dataverse-gateway"]
CMD ["serve", "--config", "/etc/dataverse-gateway/gateway.yaml"]
