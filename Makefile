# Conveyor's everyday commands. The servers come from scripts/servers (see README.md, "Local servers"); ports and
# the state folder follow the CONVEYOR_* environment variables, which make passes on to the script and the tests.

SWIFT ?= swift
SERVERS := scripts/servers
FORMAT_PATHS := Sources Tests Benchmarks Examples

.DEFAULT_GOAL := help
.PHONY: help packages test test-tsan test-asan celery-venv servers servers-down servers-status build build-tests format lint \
    bench demo

help:
	@echo "make test          install the system packages that are missing, start the local servers if they are not"
	@echo "                   up, then build and run the whole test suite"
	@echo "                   (CONVEYOR_EXTERNAL_SERVERS=1: use servers that already run; see README)"
	@echo "                   (it creates the Celery interop venv first; CONVEYOR_SKIP_CELERY=1: skip those tests)"
	@echo "make test-tsan     the suite under ThreadSanitizer (make test-asan: AddressSanitizer + LeakSanitizer)"
	@echo "make servers       start RabbitMQ and Redis (scripts/servers up)"
	@echo "make servers-down  stop them (scripts/servers down)"
	@echo "make build         swift build (build-tests: with the test targets)"
	@echo "make format        format Sources, Tests, Benchmarks and Examples in place (swift format)"
	@echo "make lint          check formatting without changing files"
	@echo "make bench         run the benchmark programs (release build): foundation, then tasks end to end"
	@echo "make demo          install missing packages, build conveyor (release), start the servers and a worker,"
	@echo "                   run 1,000 tasks and check them (scripts/demo; the servers keep running)"

# The Celery interop tests run the Python that scripts/celery-venv creates in the state folder. When it cannot be
# created the test targets fail, so CI never skips interop quietly; CONVEYOR_SKIP_CELERY=1 creates nothing and the
# interop tests skip themselves. CONVEYOR_CELERY_PYTHON=path makes the tests use another Python.
CELERY := $(if $(filter 1,$(CONVEYOR_SKIP_CELERY)),,celery-venv)
ifndef CONVEYOR_CELERY_PYTHON
export CONVEYOR_CELERY_PYTHON := $(shell scripts/celery-venv --print-python)
endif

# CONVEYOR_EXTERNAL_SERVERS=1 runs the suite against servers someone else runs (on the CONVEYOR_*_PORT ports, or
# at CONVEYOR_TEST_BROKER_URL / CONVEYOR_TEST_REDIS_URL) instead of starting ours.
# Suites that measure time (rates, spacing, failover within a deadline, latency) run after the rest, one test at a
# time: on 2 cores the other 60 suites in parallel starve them and their figures would say more about the load
# than about Conveyor. Both phases always run; the target fails if either did.
SERIAL_SUITES := ActorTests|ActorProcessTests|RateLimitTests|ConcurrencyCapTests|PeriodicTests
SERIAL_SUITES := $(SERIAL_SUITES)|AdmissionDelayTests|AdmissionPriorityTests|WorkerStreamTests|WorkerCancelTests

test: packages $(if $(filter 1,$(CONVEYOR_EXTERNAL_SERVERS)),,servers) $(CELERY) build-tests
	@status=0; \
	$(SWIFT) test --skip-build --skip '$(SERIAL_SUITES)' || status=1; \
	$(SWIFT) test --skip-build --no-parallel --filter '$(SERIAL_SUITES)' || status=1; \
	exit $$status

# Each sanitizer gets its own build folder, so switching between them does not rebuild everything.
test-tsan: $(if $(filter 1,$(CONVEYOR_EXTERNAL_SERVERS)),,servers) $(CELERY)
	$(SWIFT) test --sanitize=thread --scratch-path .build-tsan

test-asan: $(if $(filter 1,$(CONVEYOR_EXTERNAL_SERVERS)),,servers) $(CELERY)
	LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp $(SWIFT) test --sanitize=address --scratch-path .build-asan

# A no-op (one dpkg query per package) when everything is installed, so `make test` works on a fresh machine too.
packages:
	scripts/install-packages

celery-venv: packages
	scripts/celery-venv

servers: packages
	$(SERVERS) up

servers-down:
	$(SERVERS) down

servers-status:
	$(SERVERS) status

build:
	$(SWIFT) build

build-tests: packages
	$(SWIFT) build --build-tests

format:
	$(SWIFT) format -i -r --configuration .swift-format $(FORMAT_PATHS)

lint:
	$(SWIFT) format lint -r --configuration .swift-format $(FORMAT_PATHS)

# The C reference the AMQP figures are compared with, and the worker the end-to-end benchmark starts, are products
# of their own; build them next to the benchmarks (each benchmark finds them in its own build folder).
bench: servers
	$(SWIFT) build -c release --product amqp-reference
	$(SWIFT) build -c release --product conveyor-examples-worker
	$(SWIFT) run -c release ConveyorBenchmarks
	$(SWIFT) run -c release ConveyorEndToEndBenchmark

# From a fresh Debian/Ubuntu machine to 1,000 checked tasks; the servers keep running afterwards (servers-down).
demo:
	scripts/demo
