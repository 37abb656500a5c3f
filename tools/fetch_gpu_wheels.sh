#!/usr/bin/env bash
# Download (here, with network) the wheels the offline GPU machine lacks, into .whl/ (git-ignored):
# .whl/run for the tests (greenlet), .whl/tox for tox itself. Python 3.12, x86-64 Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
get() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
          --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
          --platform manylinux2014_x86_64 --platform any -d "$@"; }
get .whl/run greenlet
get .whl/tox tox virtualenv distlib platformdirs pyproject-api cachetools chardet python-discovery tomli-w \
    packaging filelock
