# syntax=docker/dockerfile:1
# debugsession-operator container image.
#   docker build -t ghcr.io/debugsession-dev/debugsession-operator:0.1.0 .
# Stage 1 builds the release binary; stage 2 is distroless (glibc + CA certificates, no shell), non-root.

FROM rust:1.89-bookworm AS builder
WORKDIR /src
# Manifests first, so the dependency layer is cached while only sources change.
COPY Cargo.toml Cargo.lock ./
COPY e2e/Cargo.toml e2e/Cargo.toml
COPY plugin/Cargo.toml plugin/Cargo.toml
# (every target named in the manifests needs a file, so the e2e suites and the plugin get stubs too)
RUN mkdir -p src/bin e2e/src e2e/bench e2e/tests/operator e2e/tests/admission e2e/tests/faults e2e/tests/plugin plugin/src \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > e2e/bench/main.rs \
 && echo 'fn main() {}' > plugin/src/main.rs \
 && echo 'fn main() {}' > src/bin/crdgen.rs \
 && touch src/lib.rs e2e/src/lib.rs \
 && for t in operator/main admission/main faults/main plugin/main; do echo 'fn main() {}' > "e2e/tests/$t.rs"; done \
 && cargo build --release --locked --bin debugsession-operator \
 && rm -rf src e2e/src e2e/bench e2e/tests plugin/src
COPY src src
COPY e2e e2e
COPY plugin plugin
# touch: make cargo rebuild the crate, not reuse the stub's artifacts
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin debugsession-operator \
 && cp target/release/debugsession-operator /debugsession-operator

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="debugsession-operator" \
      org.opencontainers.image.description="Time-boxed debug shells inside running Kubernetes workloads" \
      org.opencontainers.image.source="https://github.com/debugsession-dev/debugsession-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /debugsession-operator /debugsession-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/debugsession-operator"]
CMD ["run"]
