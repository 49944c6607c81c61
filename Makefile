# make packages: dist/wharf_<version>_amd64.deb and dist/wharf-<version>-1.x86_64.rpm from the
# static binary (docs/packaging.md).
.PHONY: packages static

packages:
	scripts/package.sh

static:
	scripts/build-static.sh
