SHELL := /bin/bash
.DEFAULT_GOAL := help
export AWS_EC2_METADATA_DISABLED := true

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## Install the tools the tests need (moto server, cfn-lint)
	.ci/setup

test: ## Run every test (starts its own moto server on a free port)
	cargo test --workspace --all-targets

lint: ## cargo fmt --check and clippy with warnings denied
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

.PHONY: help setup test lint
