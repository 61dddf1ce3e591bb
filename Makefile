SHELL := /bin/bash
.DEFAULT_GOAL := help
export AWS_EC2_METADATA_DISABLED := true

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: ## Install the tools the tests need (moto server, cfn-lint)
	.ci/setup

dev: ## Run the local stack in the foreground (moto, the functions, the Slack page); Ctrl-C stops it
	ELEVATE_SETUP_BROWSER=0 .ci/setup
	cargo build -p elevate -p elevate-local
	./target/debug/elevate-local up --config infra/elevate.toml --state-dir .local --port 4000 --identity-center --workflows

test: setup ## Run every test (installs what they need first; each starts its own moto server)
	cargo test --workspace --all-targets

bench: ## Benchmark against the local stack: table printed, figures in target/bench/results.json
	cargo run -p elevate-bench

lint: ## cargo fmt --check and clippy with warnings denied
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# ---- templates, Lambda builds and deployment (template.yaml, infra/)

SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
export SAM_CLI_TELEMETRY := 0
LAMBDA_BINS := elevate-request elevate-approve elevate-escalate elevate-revoke elevate-example-target elevate-example-hook elevate-archive
STRATEGY_STACK ?= elevate-strategy
# e.g. make deploy-strategy STRATEGY_PARAMS="BucketName=symdemo-alice"
STRATEGY_PARAMS ?=

validate: ## cfn-lint both templates, then sam validate --lint (after make sam-setup)
	cfn-lint template.yaml infra/strategy.yaml
	@if [ -x $(SAM) ]; then \
		$(SAM) validate --lint --template-file template.yaml; \
	else \
		echo "sam validate skipped: run 'make sam-setup' to install SAM CLI into $(SAM_VENV)"; \
	fi

sam-setup: ## Install AWS SAM CLI into its own venv (.venv-sam): it pins many packages
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli

# cargo-lambda finds zig through `python3 -m ziglang`: the python3 first on PATH must have it.
lambda-setup: ## pip install cargo-lambda and ziglang (the Lambda cross-compilers)
	python3 -m pip install --quiet --disable-pip-version-check \
		$$(grep -E '^(cargo-lambda|ziglang)==' .ci/requirements.txt)
	cargo lambda --version

build: ## Release Lambda binaries for arm64 (target/lambda/<name>/bootstrap)
	cargo lambda build --release --arm64 $(addprefix --bin ,$(LAMBDA_BINS))

build-x86: ## The same binaries for x86-64 (CI: needs no extra rustup target)
	cargo lambda build --release --x86-64 $(addprefix --bin ,$(LAMBDA_BINS))

# SAM is called by path so that python3 (with ziglang) and cargo-lambda stay first on PATH.
sam-build: ## sam build --beta-features: the stack's functions through cargo lambda (.aws-sam/)
	$(SAM) build --beta-features --config-file infra/samconfig.toml

# Deployment may use instance-profile credentials, which the line at the top disables for tests.
deploy deploy-strategy: export AWS_EC2_METADATA_DISABLED := false

deploy: ## Build and deploy the elevate stack (parameters in infra/samconfig.toml)
	@if grep -q 'REPLACE_WITH' infra/samconfig.toml; then \
		echo "infra/samconfig.toml still has REPLACE_WITH_... parameter values: set them first" >&2; \
		exit 1; \
	fi
	$(MAKE) sam-build
	$(SAM) deploy --config-file infra/samconfig.toml

deploy-strategy: ## Deploy infra/strategy.yaml (SymDemoAdmins, SymDemoEscalated, demo bucket)
	aws cloudformation deploy --template-file infra/strategy.yaml --stack-name $(STRATEGY_STACK) \
		--capabilities CAPABILITY_NAMED_IAM --no-fail-on-empty-changeset \
		$(if $(STRATEGY_PARAMS),--parameter-overrides $(STRATEGY_PARAMS))
	aws cloudformation describe-stacks --stack-name $(STRATEGY_STACK) \
		--query 'Stacks[0].Outputs' --output table

# The Slack app's manifest with a deployed stack's URLs: infra/slack-app-manifest.yaml without
# its header comment, each ${Output} placeholder replaced by that output of the stack.
SLACK_MANIFEST := target/slack-app-manifest.yaml
define FILL_SLACK_MANIFEST
import json, re, sys
stack, outputs = sys.argv[1], json.loads(sys.argv[2] or "[]") or []
outputs = {o["OutputKey"]: o["OutputValue"] for o in outputs}
lines = sys.stdin.read().splitlines(keepends=True)
while lines and lines[0].startswith("#"):
    lines.pop(0)
text = "".join(lines)
placeholder = re.compile(r"\$$\{(\w+)\}")
missing = sorted({name for name in placeholder.findall(text) if not outputs.get(name)})
if missing:
    sys.exit(f"slack-manifest: stack {stack} has no output {', '.join(missing)}: deploy this template.yaml first (make deploy)")
sys.stdout.write(f"# The Slack app of stack {stack} (make slack-manifest STACK={stack})\n")
sys.stdout.write(placeholder.sub(lambda m: outputs[m.group(1)], text))
endef
export FILL_SLACK_MANIFEST

slack-manifest: export AWS_EC2_METADATA_DISABLED := false
slack-manifest: ## The Slack app manifest with the URLs of a deployed stack: make slack-manifest STACK=<name>
	@if [ -z "$(STACK)" ]; then \
		echo "slack-manifest: name the deployed stack: make slack-manifest STACK=<stack name>" >&2; \
		exit 1; \
	fi
	@set -euo pipefail; \
	if [ -x $(SAM) ]; then \
		read_outputs() { $(SAM) list stack-outputs --stack-name "$(STACK)" --output json; }; \
	elif command -v aws >/dev/null; then \
		read_outputs() { aws cloudformation describe-stacks --stack-name "$(STACK)" \
			--query 'Stacks[0].Outputs' --output json; }; \
	else \
		echo "slack-manifest: neither SAM CLI ($(SAM), make sam-setup) nor the aws CLI is installed" >&2; \
		exit 1; \
	fi; \
	outputs=$$(read_outputs) || { \
		echo "slack-manifest: could not read the outputs of stack $(STACK) (deployed? AWS profile and region?)" >&2; \
		exit 1; \
	}; \
	mkdir -p $(dir $(SLACK_MANIFEST)); \
	python3 -c "$$FILL_SLACK_MANIFEST" "$(STACK)" "$$outputs" \
		< infra/slack-app-manifest.yaml > $(SLACK_MANIFEST).tmp || { rm -f $(SLACK_MANIFEST).tmp; exit 1; }; \
	mv $(SLACK_MANIFEST).tmp $(SLACK_MANIFEST); \
	cat $(SLACK_MANIFEST); \
	echo "slack-manifest: written to $(SLACK_MANIFEST); paste it at https://api.slack.com/apps," \
		"Create New App > From an app manifest" >&2

.PHONY: help setup dev test bench lint validate sam-setup lambda-setup build build-x86 sam-build deploy deploy-strategy slack-manifest
