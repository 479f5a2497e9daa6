#!/usr/bin/env bash
# Installs what the binding tests (bindings/test.sh) and the protocol interop tests
# (tests/interop) need on a fresh machine of this kind, and fails loudly if something cannot be had:
#   - pytest (+ jsonschema) from bindings/python-tests/requirements.txt
#   - pyhpke, http-message-signatures, cryptography, jsonschema, openapi-spec-validator, PyYAML
#     from tests/interop/requirements.txt
#   - java (JDK 17+) and mvn must already be on the machine (they are on this kind)
#   - the Maven artifacts of bindings/kotlin-tests, fetched once from Maven Central
# Safe to run repeatedly.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo ".ci/bindings-setup.sh: $*" >&2; exit 1; }

python="${PYTHON:-python3}"
command -v "$python" >/dev/null || die "$python not found"
command -v cargo >/dev/null || die "cargo not found (the bindings are generated from the Rust build)"

echo "==> pip install -r bindings/python-tests/requirements.txt"
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r bindings/python-tests/requirements.txt \
    || die "pip install of the binding test requirements failed"
"$python" -c 'import pytest, jsonschema' || die "pytest/jsonschema still not importable after pip install"

echo "==> pip install -r tests/interop/requirements.txt"
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/interop/requirements.txt \
    || die "pip install of the interop test requirements failed"
"$python" -c 'import pytest, pyhpke, http_message_signatures, http_sf, cryptography, jsonschema, rfc3339_validator, openapi_spec_validator, yaml' \
    || die "the interop test libraries are still not importable after pip install"

echo "==> checking java and mvn"
command -v java >/dev/null || die "java not found: the Kotlin binding tests need a JDK 17+ (apt-get install openjdk-17-jdk-headless)"
command -v mvn >/dev/null || die "mvn not found: the Kotlin binding tests need Maven (apt-get install maven)"
java_major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
[[ "${java_major%%.*}" -ge 17 ]] 2>/dev/null || die "java ${java_major:-?} found, the Kotlin binding tests need 17+"
echo "java $java_major, $(mvn -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g')"

echo "==> fetching the Maven artifacts of bindings/kotlin-tests"
# Plugins and dependencies; the Kotlin compiler's own runtime parts arrive on the first test run.
(cd bindings/kotlin-tests && mvn -B -q -ntp -Dstyle.color=never \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:go-offline) \
    || die "could not fetch the Maven artifacts of bindings/kotlin-tests"

echo "bindings setup done"
