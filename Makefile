# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv and
# installs what it needs (Python packages, and for tests the Debian tools they drive).
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
# Pods on real nodes: busybox-static (the busybox image), nginx-light (the nginx image),
# gcc (builds mkp-shim), iproute2 (network namespaces), containernetworking-plugins (the
# reference CNI binaries the cni tests run), openssl (probe HTTPS tests), tar (kubectl cp).
APT_RUN_PACKAGES := busybox-static nginx-light gcc iproute2 tar containernetworking-plugins nftables curl
APT_TEST_PACKAGES := curl procps wrk $(APT_RUN_PACKAGES) openssl dnsutils hey

.PHONY: run run-deps apt-install test test-deps lint bench down clean

$(STAMP): setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP) run-deps
	$(VENV)/bin/mkp up --nodes 1 --fake-nodes 2
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash examples/demo.sh

# What pods on a real node need (installed when we are root; else those images are missing).
run-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_RUN_PACKAGES)"

apt-install:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "not root: not installing$$missing"; fi; \
	fi

# Debian packages the suite uses. Installed when we are root (CI always is); on a
# laptop without root, tests needing a missing tool skip (CI=true makes that a failure).
test-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_TEST_PACKAGES)"
	@test -x /usr/bin/kubectl || echo "warning: /usr/bin/kubectl not found; kubectl e2e tests will skip (fail in CI)"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) test-deps lint
	$(VENV)/bin/pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) bench/apiserver_bench.py

down:
	-$(VENV)/bin/mkp down

clean: down
	rm -rf $(VENV) build *.egg-info
