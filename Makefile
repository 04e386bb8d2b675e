# A thin, documented layer over npm scripts. Every target installs what it needs first.
.PHONY: deps build lint test test-unit test-integration fuzz soak bench run demo docs clean

deps: ## install node_modules and redis-server when missing
	@bash .ci/ensure-deps.sh

build: deps ## compile TypeScript to dist/
	npm run build

lint: deps ## ESLint + tsc --noEmit
	npm run lint

test: deps ## every test suite against real redis-server processes
	npm test

test-unit: deps
	npm run test:unit

test-integration: deps
	npm run test:integration

fuzz: build ## property tests at 100x runs, then the differential session fuzzer (300,000 sequences, 2,500 drained: hours on 2 cores; FUZZ_SESSION_SCALE=100, 30,000: ~25 min), fresh printed seed; FUZZ_SEED replays
	FUZZ_RUNS_SCALE=$${FUZZ_RUNS_SCALE:-100} FUZZ_SEED=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')} \
	  node --enable-source-maps --test --test-timeout=3600000 dist/test/unit/scanner-properties.test.js dist/test/unit/replication-parsers.test.js
	FUZZ_RUNS_SCALE=$${FUZZ_SESSION_SCALE:-1000} FUZZ_SEED=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')} \
	  node --enable-source-maps --test --test-timeout=7200000 dist/test/integration/session-fuzz.test.js

soak: deps ## bounded random soak of the exit (SOAK_SECONDS, default 300; SOAK_SEED repeats one); fails on any loss
	npm run soak

bench: deps ## redis-benchmark in interleaved rounds: direct, bare Node.js pipes (A/A), HAProxy, twemproxy, the sidecar (BENCH_QUICK=1: short)
	npm run bench

run: build ## the sidecar in front of a local redis-server it starts itself
	node dist/demo/run-local.js

demo: build ## the full exit demo: master + replica, load, SIGTERM, verdict
	node dist/demo/demo.js

docs: deps ## regenerate docs/reference.md from the code, and docs/img/shutdown.svg from the recorded scrape
	npm run docs
	npm run chart

clean:
	rm -rf dist
