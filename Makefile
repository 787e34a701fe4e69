# The few commands a newcomer needs. `make test` is what CI runs.
.PHONY: test demo demo-down e2e cluster-up cluster-down crds build lint unit bench

test:          ## every test, from nothing: tools, lint, unit, local cluster, e2e suites
	e2e/test-all

demo:          ## local cluster + CRD + operator + sample session, then `kubectl get debugsessions`
	e2e/demo up

demo-down:     ## stop the demo operator and the local cluster
	e2e/demo down

e2e:           ## the operator e2e suite against the running cluster (e2e/cluster/up first)
	cargo build --bin debugsession-operator
	cargo test -p debugsession-e2e --test operator

cluster-up:    ## bring up the local Kubernetes v1.20.2 cluster (builds it on first use)
	e2e/cluster/up

cluster-down:  ## stop the local cluster and remove its state (caches are kept)
	e2e/cluster/down

crds:          ## regenerate the CRD in crds/ and the chart
	cargo run -q --bin crdgen > crds/debugsession.dev_debugsessions.yaml
	cp crds/debugsession.dev_debugsessions.yaml charts/debugsession-operator/crds/

build:
	cargo build --release --bin debugsession-operator

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo test -p debugsession-operator

BENCH_SIM_NODES ?= 25
bench:         ## side by side with kubectl, and at scale, on the local cluster: a table, target/bench/results.json
	SIM_NODES=$(BENCH_SIM_NODES) e2e/cluster/up
	cargo build --release --bin debugsession-operator
	cargo build --release -p kubectl-debugsession
	DEBUGSESSION_OPERATOR_BIN=$(CURDIR)/target/release/debugsession-operator \
	DEBUGSESSION_PLUGIN_BIN=$(CURDIR)/target/release/kubectl-debugsession \
	  cargo run --release -q -p debugsession-e2e --bin bench
