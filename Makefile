# Build and install modgate.
#
#   make                 build the release binary (static, see scripts/build-static)
#   make install         build, then install under $(DESTDIR)$(PREFIX)
#   make install-files   install an already built $(BIN) (what `install` runs)
#   make uninstall       remove what install put there (not /etc/modgate/policy.toml)
#   make deb | rpm       build the packages into $(PKGOUT) (packaging/build)
#
# Installs the files a package holds (install-pkg-files): the binary, its
# modgate-runtime link (the runc wrapper for Docker and containerd), the man pages and
# bash, zsh and fish completions (generated from the command line definition), the
# default policy and the podman/CRI-O hooks.d files as examples under $(DOCDIR) and
# $(DATADIR), the systemd units of `modgate gc` and the tmpfiles.d entry of the state
# store. Then it wires this host (install-host-files, which packages never do): the
# default policy as /etc/modgate/policy.toml when there is none, the hooks.d files
# podman and CRI-O read, and, on an iSulad host whose syscontainer-hooks slot is empty,
# a link from it to modgate.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man/man1
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
DOCDIR ?= $(PREFIX)/share/doc/modgate
DATADIR ?= $(PREFIX)/share/modgate
# systemd and systemd-tmpfiles read both /usr/lib and /usr/local/lib.
UNITDIR ?= $(PREFIX)/lib/systemd/system
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
# podman and CRI-O read hooks.d here whatever the prefix.
HOOKSDIR ?= /usr/share/containers/oci/hooks.d
ISULAD_HOOKS ?= /var/lib/isulad/hooks
CARGO ?= cargo
BIN ?= target/static/x86_64-unknown-linux-gnu/release/modgate
GEN ?= target/generated
PKGOUT ?= target/packages

.PHONY: all build install install-files install-pkg-files install-host-files uninstall deb rpm

all: build

build:
	scripts/build-static >/dev/null

install: build
	$(MAKE) install-files

install-files:
	$(MAKE) install-pkg-files
	$(MAKE) install-host-files

# What a package holds: nothing here wires an engine or changes /etc.
install-pkg-files:
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
	install -D -m 0644 crates/core/default-policy.toml $(DESTDIR)$(DOCDIR)/examples/policy.toml
	# Examples, written afresh: no .bak of an older copy.
	rm -rf $(DESTDIR)$(DATADIR)/hooks.d
	$(BIN) --root "$(DESTDIR)/" install hooks-d --binary $(BINDIR)/modgate --dir $(DATADIR)/hooks.d >/dev/null
	sed 's|@BINDIR@|$(BINDIR)|g' packaging/modgate-gc.service.in >$(GEN)/modgate-gc.service
	install -D -m 0644 $(GEN)/modgate-gc.service $(DESTDIR)$(UNITDIR)/modgate-gc.service
	install -D -m 0644 packaging/modgate-gc.timer $(DESTDIR)$(UNITDIR)/modgate-gc.timer
	install -D -m 0644 packaging/tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/modgate.conf

# Wiring this host (make install only).
install-host-files:
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
	rm -rf $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DATADIR)/hooks.d
	rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DATADIR) 2>/dev/null || true
	rm -f $(DESTDIR)$(UNITDIR)/modgate-gc.service $(DESTDIR)$(UNITDIR)/modgate-gc.timer $(DESTDIR)$(TMPFILESDIR)/modgate.conf
	rm -f $(DESTDIR)$(HOOKSDIR)/modgate-prestart.json $(DESTDIR)$(HOOKSDIR)/modgate-poststop.json
	@if [ -L $(DESTDIR)$(ISULAD_HOOKS)/syscontainer-hooks ] && [ "$$(readlink $(DESTDIR)$(ISULAD_HOOKS)/syscontainer-hooks)" = $(BINDIR)/modgate ]; then \
		rm -f $(DESTDIR)$(ISULAD_HOOKS)/syscontainer-hooks; \
	fi

# Packages of the static binary, built into $(PKGOUT).
deb rpm: build
	BIN=$(BIN) packaging/build $@ $(PKGOUT)
