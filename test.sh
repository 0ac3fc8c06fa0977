#!/usr/bin/env bash
# The test command (README.md, "Tests"): installs the system packages the tests start or
# check with when they are missing (Debian; needs root or sudo), then runs the workspace's
# tests. `.ci/run` runs this after its format, lint and lock checks.
#
#   ./test.sh                       # all tests; live ones skipped when the index is unreachable
#   ./test.sh -p marqo-base         # extra arguments go to `cargo test`
#   MARQO_BASE_FLAGSHIP=1 ./test.sh -p marqo-base --test build live_flagship   # the multi-GB image
set -euo pipefail
cd "$(dirname "$0")"

# command -> Debian package, one line each: what the tests run.
# python3 + venv + pip: sdist builds and pip checking our outputs; apt-ftparchive, gpg, gpgv:
# the signed apt repository; qemu-aarch64-static: arm64 binaries of unpacked trees; skopeo,
# umoci: OCI layouts; docker-registry, htpasswd, openssl: the registry tests; zstd: zstd
# layers; curl: reachability of the live index; podman, runc: images run in a real
# container runtime; keytool, javac (and java): the Java truststore and a TLS handshake
# through it; readelf: the ld.so.cache (ldconfig is essential); script: a terminal for the
# passphrase prompts; pkill (procps, which brings the kill binary: `command -v kill` finds the
# shell builtin): signals to interrupted builds (a minimal Debian has no procps); mmdebstrap,
# arch-test: the Debian parity test (Debian's own tool runs the maintainer scripts, arm64
# through qemu-user).
tools="
python3 python3
curl curl
apt-ftparchive apt-utils
gpg gnupg
gpgv gpgv
qemu-aarch64-static qemu-user-static
skopeo skopeo
umoci umoci
docker-registry docker-registry
htpasswd apache2-utils
openssl openssl
zstd zstd
podman podman
runc runc
cc gcc
keytool default-jre-headless
javac default-jdk-headless
readelf binutils
script bsdutils
pkill procps
mmdebstrap mmdebstrap
arch-test arch-test
"
need=()
while read -r cmd pkg; do
    [ -n "$cmd" ] || continue
    command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done <<< "$tools"
command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
# GNU time for the peak memory the hostile tests print (`time` alone is bash's keyword).
[ -x /usr/bin/time ] || need+=(time)
# arm64's libc for the ld.so.cache test, which ldconfig reads (a file, not a command).
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc6-arm64-cross)
# The signing tests check cosign's formats with OpenSSL and libsodium through Debian's Python.
/usr/bin/python3 -c 'import cryptography' 2>/dev/null || need+=(python3-cryptography)
/usr/bin/python3 -c 'import nacl.secret' 2>/dev/null || need+=(python3-nacl)
# The flagship build cross-compiles psutil for arm64: the compiler and arm64 libc headers.
if [ "${MARQO_BASE_FLAGSHIP:-}" = 1 ]; then
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu)
    [ -e /usr/aarch64-linux-gnu/include/stdio.h ] || need+=(libc6-dev-arm64-cross)
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "installing what the tests need: ${need[*]}"
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "not root and no sudo: install these Debian packages, then run again: ${need[*]}" >&2
            exit 2
        }
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The pip cross-checks run against pip 23.2: Debian 12's (23.0.1) crashes on PEP 691 JSON whose
# core metadata is a hash table, which PEP 691 and 714 allow and our test index serves, and the
# newest (26) no longer applies PIP_CONSTRAINT to build requirements, which one check relies on.
# Elsewhere pip 23.2.1 goes in a venv that still sees Debian's packages, first on PATH
# (installed once from the index pip is configured with).
pip_new_enough='import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) != (23, 2))'
if ! python3 -c "$pip_new_enough" 2>/dev/null; then
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/marqo-base-test/pip-venv"
    if ! "$venv/bin/python3" -c "$pip_new_enough" 2>/dev/null; then
        echo "this pip is not 23.2: installing pip 23.2.1 in $venv"
        rm -rf "$venv"
        python3 -m venv --system-site-packages "$venv"
        "$venv/bin/python3" -m pip install -q --disable-pip-version-check 'pip==23.2.1' ||
            echo "could not install pip 23.2.1: the pip cross-checks will fail on this machine" >&2
    fi
    export PATH="$venv/bin:$PATH"
fi

# The live-index tests run when pip's default index answers; otherwise they are skipped.
if [ -z "${MARQO_BASE_SKIP_LIVE:-}" ]; then
    index=$(python3 -c 'from pip._internal.models.index import PyPI; print(PyPI.simple_url)' 2>/dev/null || true)
    if [ -z "$index" ] || ! curl -fsS -o /dev/null --max-time 20 "${index%/}/pip/"; then
        echo "the package index is not reachable: skipping live tests"
        export MARQO_BASE_SKIP_LIVE=1
    fi
fi

# A CPython 3.9 for the tests of bytecode in images (the generated world is Python 3.9):
# `python3.9` on PATH or one of pyenv's, else Debian 11's, unpacked from this host's mirror by
# marqo-base itself into the cache (its binary runs on Debian 12: libc, zlib, expat).
is39='import sys; assert sys.version_info[:2] == (3, 9)'
if ! python3.9 -c "$is39" 2>/dev/null && ! ls "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9.*/bin/python3.9 >/dev/null 2>&1; then
    py39="${XDG_CACHE_HOME:-$HOME/.cache}/marqo-base-test/python3.9"
    if ! "$py39/bin/python3.9" -c "$is39" 2>/dev/null; then
        echo "no CPython 3.9 here: unpacking Debian 11's into $py39 for the bytecode tests"
        rm -rf "$py39"
        if cargo run -q -p marqo-base -- -q debian rootfs --suite bullseye --no-essential \
            --out "$py39/root" python3.9-minimal libpython3.9-stdlib; then
            mkdir -p "$py39/bin" && ln -s ../root/usr/bin/python3.9 "$py39/bin/python3.9"
        else
            echo "could not unpack Debian 11's python3.9: the bytecode tests will fail" >&2
        fi
    fi
    export PATH="$py39/bin:$PATH"
fi

# MARQO_BASE_FLAGSHIP=1 also runs the ignored tests its filter selects (the multi-GB flagship).
args=("$@")
if [ "${MARQO_BASE_FLAGSHIP:-}" = 1 ]; then
    case " $* " in
    *" -- "*) args+=(--include-ignored) ;;
    *) args+=(-- --include-ignored) ;;
    esac
fi
cargo test --workspace "${args[@]}"
