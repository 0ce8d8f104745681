# Build and install modgate.
#
#   make                 build the release binary (static, see scripts/build-static)
#   make install         build, then install under $(DESTDIR)$(PREFIX)
#   make install-files   install an already built $(BIN) (what `install` runs)
#   make uninstall       remove what install put there (not /etc/modgate/policy.toml)
#
# Installs the binary, its modgate-runtime link (the runc wrapper for Docker and
# containerd), the man pages and bash, zsh and fish completions (generated from the
# command line definition), the default policy as /etc/modgate/policy.toml when there
# is none, and the hooks.d files podman and CRI-O read. On an iSulad host whose
# syscontainer-hooks slot is empty, it links it to modgate.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man/man1
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
# podman and CRI-O read hooks.d here whatever the prefix.
HOOKSDIR ?= /usr/share/containers/oci/hooks.d
ISULAD_HOOKS ?= /var/lib/isulad/hooks
CARGO ?= cargo
BIN ?= target/static/x86_64-unknown-linux-gnu/release/modgate
GEN ?= target/generated

.PHONY: all build install install-files uninstall

all: build

build:
	scripts/build-static >/dev/null

install: build
	$(MAKE) install-files

install-files:
	rm -rf $(GEN)
	$(BIN) generate man $(GEN)/man >/dev/null
	$(BIN) generate completions $(GEN)/completions >/dev/null
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/modgate
	ln -sfn modgate $(DESTDIR)$(BINDIR)/modgate-runtime
	install -d $(DESTDIR)$(MANDIR)
	install -m 0644 $(GEN)/man/*.1 $(DESTDIR)$(MANDIR)/
	install -D -m 0644 $(GEN)/completions/modgate.bash $(DESTDIR)$(BASHCOMPDIR)/modgate
	install -D -m 0644 $(GEN)/completions/_modgate $(DESTDIR)$(ZSHCOMPDIR)/_modgate
	install -D -m 0644 $(GEN)/completions/modgate.fish $(DESTDIR)$(FISHCOMPDIR)/modgate.fish
	@if [ -e $(DESTDIR)/etc/modgate/policy.toml ]; then \
		echo "keeping the existing /etc/modgate/policy.toml"; \
	else \
		install -D -m 0644 crates/core/default-policy.toml $(DESTDIR)/etc/modgate/policy.toml; \
	fi
	$(BIN) --root "$(DESTDIR)/" install hooks-d --binary $(BINDIR)/modgate --dir $(HOOKSDIR)
	@if [ -d $(DESTDIR)$(ISULAD_HOOKS) ]; then \
		if [ ! -e $(DESTDIR)$(ISULAD_HOOKS)/syscontainer-hooks ] && [ ! -L $(DESTDIR)$(ISULAD_HOOKS)/syscontainer-hooks ]; then \
			ln -s $(BINDIR)/modgate $(DESTDIR)$(ISULAD_HOOKS)/syscontainer-hooks; \
			echo "linked $(ISULAD_HOOKS)/syscontainer-hooks -> $(BINDIR)/modgate"; \
		elif [ ! -L $(DESTDIR)$(ISULAD_HOOKS)/syscontainer-hooks ]; then \
			echo "syscontainer-tools' hook is installed: 'modgate install syscontainer-tools' puts modgate in its place (keeping it as .bak, run after modgate)"; \
		fi; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/modgate $(DESTDIR)$(BINDIR)/modgate-runtime
	rm -f $(DESTDIR)$(MANDIR)/modgate.1 $(DESTDIR)$(MANDIR)/modgate-*.1
	rm -f $(DESTDIR)$(BASHCOMPDIR)/modgate $(DESTDIR)$(ZSHCOMPDIR)/_modgate $(DESTDIR)$(FISHCOMPDIR)/modgate.fish
	rm -f $(DESTDIR)$(HOOKSDIR)/modgate-prestart.json $(DESTDIR)$(HOOKSDIR)/modgate-poststop.json
	@if [ -L $(DESTDIR)$(ISULAD_HOOKS)/syscontainer-hooks ] && [ "$$(readlink $(DESTDIR)$(ISULAD_HOOKS)/syscontainer-hooks)" = $(BINDIR)/modgate ]; then \
		rm -f $(DESTDIR)$(ISULAD_HOOKS)/syscontainer-hooks; \
	fi
