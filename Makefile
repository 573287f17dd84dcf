# togather-chatops — see README.md. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
export PATH := /usr/local/go/bin:$(PATH)
BIN := bin/togather-chatops
PKGS := ./...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help build test test-short lint fuzz bench run demo services clean-docker docker-image

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build the static binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$$(git describe --always --dirty 2>/dev/null || echo dev)" -o $(BIN) ./cmd/togather-chatops

services: ## install (Debian) and start PostgreSQL and Caddy; check Docker
	bash .ci/services.sh

test: services ## run every test against real PostgreSQL, Docker, Caddy and the fake Slack
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 25m $(PKGS)

test-short: ## unit tests only (no services)
	$(GO) test -short -count=1 $(PKGS)

lint: ## go vet, gofmt and staticcheck
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) run $(STATICCHECK) $(PKGS)

fuzz: ## run the fuzz targets (command parser, Caddyfile block and maintenance page, window start, Alertmanager decoder) for a minute each
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=60s ./bot/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=60s ./ops/caddy/
	$(GO) test -run='^$$' -fuzz=FuzzMaintenance -fuzztime=60s ./ops/caddy/
	$(GO) test -run='^$$' -fuzz=FuzzParseMaintenanceStart -fuzztime=60s ./ops/
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=60s ./incidents/alertmanager/

bench: services ## measure DESIGN.md §8 figures; prints RESULT lines
	set -o pipefail; TOGATHER_BENCH=1 $(GO) test -count=1 -timeout 30m -run '^TestBench' -v ./internal/bench/ | grep -E '^(RESULT|--- FAIL|FAIL|ok)'

run: build ## run the bot against Slack (needs a config file and the Slack tokens)
	$(BIN) serve

demo: services ## start PostgreSQL, Caddy and a stand-in environment, then open the console
	$(GO) run ./cmd/togather-chatops console --demo

docker-image: ## build the bot's own container image
	docker build -t togather-chatops:$$(git describe --always --dirty 2>/dev/null || echo dev) .

clean-docker: ## remove every container and image the tests and the demo created (by label)
	-docker rm -f $$(docker ps -aq --filter label=com.togather.chatops.test) 2>/dev/null
	-docker rm -f $$(docker ps -aq --filter label=com.togather.chatops.demo) 2>/dev/null
	-docker rmi -f $$(docker images -q --filter label=com.togather.chatops.test) 2>/dev/null
