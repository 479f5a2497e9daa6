#!/usr/bin/env bash
# Validates every *.json file in DIR (sorted by name) as FHIR R4, in one JVM, with HAPI FHIR's
# instance validator against base R4 only, fully offline (see README.md next to this script).
#
#     tests/fhir-validator/validate.sh DIR
#
# stderr: per file, the counts and every error and warning with its location, for people.
# stdout: exactly one JSON document,
#     {"files":[{"file":"a.json","errors":N,"warnings":N,"information":N,
#                "messages":[{"severity":"error","location":"Bundle.entry[0]...","message":"..."}]}]}
# where errors counts ERROR and FATAL, and messages holds the fatal, error and warning ones.
# Exit status: 0 no file has an error, 1 some file has one, 2 it cannot run at all.
#
# Compiles itself on first use (mvn -o, quietly) from what .ci/fhir-setup.sh fetched; then runs
# plain `java -cp` over target/classpath.txt. FHIR_VALIDATOR_JAVA_OPTS replaces the JVM options.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "tests/fhir-validator/validate.sh: $*" >&2; exit 2; }

[[ $# -eq 1 ]] || die "usage: validate.sh DIR (validates DIR/*.json)"
dir="$1"
[[ -d "$dir" ]] || die "$dir is not a directory"

# Sorted by name, byte order, whatever the locale.
files=()
while IFS= read -r -d '' f; do files+=("$f"); done \
    < <(find "$dir" -mindepth 1 -maxdepth 1 -name '*.json' \( -type f -o -type l \) -print0 | LC_ALL=C sort -z)
[[ ${#files[@]} -gt 0 ]] || die "no *.json files in $dir"

command -v java >/dev/null || die "java not found (needs a JDK 17+; run .ci/fhir-setup.sh)"
java_major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
[[ "${java_major%%.*}" -ge 17 ]] 2>/dev/null || die "java ${java_major:-?} found, needs 17+"

classes="$here/target/classes"
main_class="$classes/se/lotsa/fhirvalidator/Validate.class"
cpfile="$here/target/classpath.txt"

# (Re)build, offline and quietly, when never built or when the source or pom changed.
if [[ ! -f "$main_class" || ! -s "$cpfile" || "$here/pom.xml" -nt "$cpfile" ]] \
        || [[ -n "$(find "$here/src" -name '*.java' -newer "$main_class" -print -quit)" ]]; then
    command -v mvn >/dev/null || die "mvn not found (needed once to compile the validator; run .ci/fhir-setup.sh)"
    mkdir -p "$here/target"
    log="$here/target/build.log"
    if ! (cd "$here" && mvn -o -B -q -ntp -Dstyle.color=never compile) >"$log" 2>&1; then
        sed 's/\x1b\[[0-9;]*m//g' "$log" >&2
        die "the offline build failed (see above); run .ci/fhir-setup.sh first, it fetches the jars once"
    fi
    [[ -f "$main_class" && -s "$cpfile" ]] || die "the build left no $main_class or $cpfile"
fi

classpath="$(cat "$cpfile")"
IFS=: read -r -a jars <<<"$classpath"
for jar in "${jars[@]}"; do
    [[ -f "$jar" ]] || die "missing jar $jar: run .ci/fhir-setup.sh"
done

# C1 only and the serial collector: the same wall time for batches of up to ~50 files as the
# defaults, with half the CPU and memory (the run is dominated by a one-off warm-up).
read -r -a java_opts <<<"${FHIR_VALIDATOR_JAVA_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xmx2g}"

rc=0
out="$(java "${java_opts[@]}" -cp "$classes:$classpath" se.lotsa.fhirvalidator.Validate "${files[@]}")" || rc=$?
case "$rc" in
    0 | 1) [[ -n "$out" ]] || die "the validator printed no result (exit $rc)" ;;
    2) exit 2 ;; # it said why on stderr
    *) die "the validator failed (exit $rc)" ;;
esac
printf '%s\n' "$out"
exit "$rc"
