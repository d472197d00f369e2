# Multi-stage build: compile in the Rust image, run on distroless (CA certificates, no shell).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin dataverse-gateway

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/dataverse-gateway /usr/local/bin/dataverse-gateway
COPY gateway.yaml /etc/dataverse-gateway/gateway.yaml
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dataverse-gateway"]
CMD ["serve", "--config", "/etc/dataverse-gateway/gateway.yaml"]
