# The bot's own image: a static binary on a distroless base, run as non-root.
# It has no pg_dump/psql: set snapshots.dump: container:<the database's container> so
# snapshots use the database container's own (see docs/operations.md, Snapshots);
# this image serves chat and talks to Docker, Caddy and PostgreSQL over the network.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/togather-chatops ./cmd/togather-chatops

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/togather-chatops /usr/local/bin/togather-chatops
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/togather-chatops"]
CMD ["serve"]
