#!/usr/bin/env bash
# Sets up the offline FHIR R4 validator harness (tests/fhir-validator) on a fresh machine of this
# kind, and fails loudly if something cannot be had:
#   - java (JDK 17+) and mvn must already be on the machine (they are on this kind)
#   - HAPI FHIR 8.8.0 and the Maven plugins that build the harness, fetched once from Maven Central
#     into the default local repository (~/.m2), about 150 MB
#   - the harness compiled, then checked: a good Bundle must give 0 errors, a broken one errors
# Safe to run repeatedly; quiet when already set up (the check still runs, ~10 s).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo ".ci/fhir-setup.sh: $*" >&2; exit 1; }

harness=tests/fhir-validator

command -v java >/dev/null || die "java not found: the FHIR validator needs a JDK 17+ (apt-get install openjdk-17-jdk-headless)"
command -v mvn >/dev/null || die "mvn not found: the FHIR validator is built with Maven (apt-get install maven)"
java_major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
[[ "${java_major%%.*}" -ge 17 ]] 2>/dev/null || die "java ${java_major:-?} found, the FHIR validator needs 17+"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Offline first: when everything is already in ~/.m2 this is all that runs.
mvn_compile() { (cd "$harness" && mvn -B -q -ntp -Dstyle.color=never "$@" compile) >"$tmp/mvn.log" 2>&1; }
if ! mvn_compile -o; then
    echo "==> fetching HAPI FHIR and the Maven plugins of $harness from Maven Central"
    mvn_compile || { sed 's/\x1b\[[0-9;]*m//g' "$tmp/mvn.log" >&2; die "could not fetch or compile $harness"; }
    mvn_compile -o || { sed 's/\x1b\[[0-9;]*m//g' "$tmp/mvn.log" >&2; die "$harness does not build offline after fetching"; }
fi

mkdir -p "$tmp/good" "$tmp/broken"
# Patient + Consent + ServiceRequest + Task, as the clinic exports them: must give 0 errors.
cat >"$tmp/good/good.json" <<'EOF'
{"resourceType": "Bundle", "type": "collection", "timestamp": "2025-03-01T10:05:00+01:00", "entry": [
 {"fullUrl": "urn:uuid:3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c", "resource": {"resourceType": "Patient",
  "id": "3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c",
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Tolvan Tolvansson</div>"},
  "identifier": [{"system": "http://electronichealth.se/identifier/personnummer", "value": "199001012384"}],
  "name": [{"text": "Tolvan Tolvansson"}], "telecom": [{"system": "phone", "value": "+46701234567", "use": "mobile"}],
  "birthDate": "1990-01-01", "address": [{"district": "Snäckan", "country": "SE"}]}},
 {"fullUrl": "urn:uuid:7a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d", "resource": {"resourceType": "Consent",
  "id": "7a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d",
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Samtycke</div>"},
  "status": "active",
  "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
  "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6", "display": "Release of information consent"}]}],
  "patient": {"reference": "urn:uuid:3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"}, "dateTime": "2025-03-01T10:00:00+01:00",
  "performer": [{"reference": "urn:uuid:3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"}],
  "organization": [{"display": "Vårdcentralen Snäckan"}], "policy": [{"uri": "urn:lotsa:consent-script:snackan:3"}],
  "provision": {"type": "permit",
   "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "disclose"}]}],
   "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
   "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
              "reference": {"display": "Vårdcentralen Snäckan"}}]}}},
 {"fullUrl": "urn:uuid:b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e", "resource": {"resourceType": "ServiceRequest",
  "id": "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e",
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Remiss</div>"},
  "status": "active", "intent": "order",
  "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}]}],
  "code": {"text": "Stödsamtal"}, "subject": {"reference": "urn:uuid:3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"},
  "authoredOn": "2025-03-01T10:00:00+01:00",
  "occurrencePeriod": {"start": "2025-03-01T10:00:00+01:00", "end": "2025-03-15T10:00:00+01:00"},
  "performer": [{"display": "Vårdcentralen Snäckan"}], "note": [{"text": "Ring efter 16."}]}},
 {"fullUrl": "urn:uuid:c9d8e7f6-a5b4-4c3d-9e2f-1a0b9c8d7e6f", "resource": {"resourceType": "Task",
  "id": "c9d8e7f6-a5b4-4c3d-9e2f-1a0b9c8d7e6f",
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Ring patienten</div>"},
  "status": "requested", "intent": "order",
  "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
  "focus": {"reference": "urn:uuid:b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"},
  "basedOn": [{"reference": "urn:uuid:b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"}],
  "for": {"reference": "urn:uuid:3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"}, "authoredOn": "2025-03-01T10:00:00+01:00",
  "executionPeriod": {"start": "2025-03-01T10:00:00+01:00"},
  "restriction": {"period": {"end": "2025-03-15T10:00:00+01:00"}}, "businessStatus": {"text": "Väntar"}}}
]}
EOF
# Deliberately broken: a bad date, a missing required element, an unknown element.
cat >"$tmp/broken/broken.json" <<'EOF'
{"resourceType": "Bundle", "type": "collection", "entry": [
 {"fullUrl": "urn:uuid:3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c", "resource": {"resourceType": "Patient",
  "id": "3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c", "birthDate": "1990-13-45"}},
 {"fullUrl": "urn:uuid:7a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d", "resource": {"resourceType": "Consent",
  "id": "7a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d", "colour": "red",
  "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
  "category": [{"text": "Samtycke"}], "patient": {"reference": "urn:uuid:3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c"},
  "policy": [{"uri": "urn:lotsa:consent-script:snackan:3"}]}}
]}
EOF

validate() { # DIR NAME: runs validate.sh, keeping its stderr for a failure message
    local rc=0
    "$harness/validate.sh" "$1" >"$tmp/$2.out" 2>"$tmp/$2.err" || rc=$?
    echo "$rc"
}
fail() { cat "$tmp/$1.err" >&2; die "$2"; }

rc="$(validate "$tmp/good" good)"
[[ "$rc" == 0 ]] || fail good "the good Bundle did not validate (validate.sh exit $rc, expected 0)"
grep -q '"file":"good.json","errors":0,' "$tmp/good.out" || fail good "the good Bundle's result is not 0 errors"

rc="$(validate "$tmp/broken" broken)"
[[ "$rc" == 1 ]] || fail broken "the broken Bundle gave validate.sh exit $rc, expected 1 (errors)"
for expected in \
    'Bundle.entry\[0\][^"]*\.birthDate","message":"Not a valid date format' \
    'Consent.status: minimum required = 1' \
    "Unrecognized property 'colour'"; do
    grep -q "$expected" "$tmp/broken.out" || fail broken "the broken Bundle's errors lack: $expected"
done

echo "fhir-validator setup done: $harness/validate.sh DIR (HAPI FHIR 8.8.0, base R4, offline)"
