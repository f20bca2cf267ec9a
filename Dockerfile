# syntax=docker/dockerfile:1
# Build stage: the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin icp \
    && strip target/release/icp

# Runtime stage: a slim Debian with the binary and nothing else, run as a non-root user.
FROM debian:bookworm-slim
# ca-certificates unpinned on purpose: it should follow the distribution's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 icp \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/icp --create-home icp
COPY --from=build /src/target/release/icp /usr/local/bin/icp
USER 10001:10001
WORKDIR /var/lib/icp
# Listening beyond loopback needs an API key; make one in the same volume first:
#   docker run --rm -v icp:/var/lib/icp IMAGE keys create --name me    (prints the key once)
#   docker run -d -v icp:/var/lib/icp -p 8080:8080 IMAGE
ENV ICP_LISTEN=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/icp/icp.db
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/icp"]
CMD ["serve"]
