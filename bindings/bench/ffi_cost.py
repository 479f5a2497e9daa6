#!/usr/bin/env python3
"""The cost of one FFI call from Python, and the report that puts Rust, Python and Kotlin side by side.

    ffi_cost.py measure --fixtures DIR --out python.json   time each exported call through lotsa_ffi
    ffi_cost.py report rust.json python.json kotlin.json --out ffi-cost.json   print the table

`measure` imports the generated module from $LOTSA_BINDINGS_PYTHON (default
target/bindings/python) and times the same calls, on the same inputs and bundle, as
rust_cost.rs and FfiCostBench.kt: for each, the iterations are calibrated so one round takes
about 0.15 s, then 7 rounds are timed; the median round (ns per call) is reported, and the
fastest. bindings/bench/ffi_cost.sh runs all three and the report.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROUNDS = 7
ROUND_TIME = 0.15
ON = "2026-11-23"
ADULT = "199004121233"  # 1990-04-12, Luhn-valid, 36 on ON

# Report order; the same names in rust_cost.rs and FfiCostBench.kt.
CASES = [
    "core_version",
    "check_identity_number",
    "find_municipality",
    "municipalities_for_postal_code",
    "normalize_phone",
    "validate_contact",
    "all_municipalities",
    "ProgramBundle.load",
    "programs",
    "consent_script",
    "assess (eligible)",
    "assess (routed)",
    "validate_consent",
]


def _time(fn):
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        e = time.perf_counter() - t
        if e >= ROUND_TIME / 4:
            n = max(1, int(n * ROUND_TIME / e))
            break
        n *= 4
    rounds = []
    for _ in range(ROUNDS):
        t = time.perf_counter_ns()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter_ns() - t) / n)
    return {"ns_median": statistics.median(rounds), "ns_min": min(rounds), "iterations": n}


def measure(args):
    bindings = pathlib.Path(os.environ.get("LOTSA_BINDINGS_PYTHON", ROOT / "target" / "bindings" / "python"))
    sys.path.insert(0, str(bindings))
    import lotsa_ffi as ffi  # noqa: E402

    fixtures = pathlib.Path(args.fixtures)
    signed = (fixtures / "bundle.json").read_text("utf-8")
    trust = (fixtures / "admin.pub").read_text("utf-8").strip()
    bundle = ffi.ProgramBundle.load(signed, trust)
    ffi.set_language("sv")

    stockholm = ffi.PersonFacts(identity_number=ADULT, municipality="Stockholm", provenance=ffi.Provenance.DOCUMENT)
    gislaved = ffi.PersonFacts(identity_number=ADULT, municipality="Gislaved", provenance=ffi.Provenance.DOCUMENT)
    assert bundle.assess("lots-for-livet", stockholm, ON).outcome == ffi.Outcome.ELIGIBLE
    routed = bundle.assess("lots-for-livet", gislaved, ON)
    assert routed.outcome == ffi.Outcome.NOT_ELIGIBLE and len(routed.routing) == 2
    assert ffi.check_identity_number(ADULT, ON).age == 36

    def consent():
        return ffi.ConsentInput(
            program_id="lots-for-livet", subject_ref="referral-0001", language="sv", script_version=1,
            method=ffi.ConsentMethod.VERBAL(witness="P-4711"), role=ffi.Role.POLICE, officer_id="P-1234",
            unit="Polisen City, Sergels torg", told_no_effect_on_police_matter=True, told_can_withdraw=True,
            capacity=ffi.Capacity.ADEQUATE,
        )

    # The arguments a call needs are built inside the timed lambda only where the app would build
    # them per call (a record from form fields); plain strings are constants.
    cases = {
        "core_version": ffi.core_version,
        "check_identity_number": lambda: ffi.check_identity_number(ADULT, ON),
        "find_municipality": lambda: ffi.find_municipality("Gislaved"),
        "municipalities_for_postal_code": lambda: ffi.municipalities_for_postal_code("111 22"),
        "normalize_phone": lambda: ffi.normalize_phone("070-123 45 67"),
        "validate_contact": lambda: ffi.validate_contact(
            ffi.ContactDetails(name="Anna", phone="070-123 45 67", best_time="efter 17")
        ),
        "all_municipalities": ffi.all_municipalities,
        "ProgramBundle.load": lambda: ffi.ProgramBundle.load(signed, trust),
        "programs": bundle.programs,
        "consent_script": lambda: bundle.consent_script("lots-for-livet", "sv"),
        "assess (eligible)": lambda: bundle.assess("lots-for-livet", stockholm, ON),
        "assess (routed)": lambda: bundle.assess("lots-for-livet", gislaved, ON),
        "validate_consent": lambda: bundle.validate_consent(consent()),
    }
    assert list(cases) == CASES
    results = {}
    for name, fn in cases.items():
        results[name] = _time(fn)
        r = results[name]
        print(f"{name:32} {r['ns_median']:>12.0f} ns/call (min {r['ns_min']:.0f}, {r['iterations']} calls/round)")
    out = {
        "language": "python",
        "runtime": f"{platform.python_implementation()} {platform.python_version()}",
        "library": str(next(bindings.glob("liblotsa_ffi.*"))),
        "results": results,
    }
    pathlib.Path(args.out).write_text(json.dumps(out, indent=2) + "\n", "utf-8")


def _fmt_ns(ns):
    if ns is None:
        return "—"
    if ns >= 100_000:
        return f"{ns / 1000:,.0f} µs"
    if ns >= 10_000:
        return f"{ns / 1000:.1f} µs"
    return f"{ns:,.0f} ns"


def report(args):
    runs = {}
    for path in (args.rust, args.python, args.kotlin):
        data = json.loads(pathlib.Path(path).read_text("utf-8"))
        runs[data["language"]] = data
    rows = []
    for name in CASES:
        ns = {lang: runs[lang]["results"].get(name, {}).get("ns_median") for lang in ("rust", "python", "kotlin")}
        row = {"call": name, **{f"{k}_ns": v for k, v in ns.items()}}
        r = ns["rust"]
        for lang in ("python", "kotlin"):
            v = ns[lang]
            row[f"{lang}_over_rust"] = (v / r) if (r and v) else None
            row[f"{lang}_minus_rust_ns"] = (v - r) if (r is not None and v is not None) else None
        rows.append(row)

    head = f"{'call':32} {'Rust':>10} {'Python':>10} {'Kotlin':>10} {'Py/Rust':>8} {'Kt/Rust':>8} {'Py−Rust':>10} {'Kt−Rust':>10}"
    print(head)
    print("-" * len(head))

    def ratio(x):
        return "—" if x is None else f"{x:,.1f}×"

    for row in rows:
        print(
            f"{row['call']:32} {_fmt_ns(row['rust_ns']):>10} {_fmt_ns(row['python_ns']):>10} {_fmt_ns(row['kotlin_ns']):>10}"
            f" {ratio(row['python_over_rust']):>8} {ratio(row['kotlin_over_rust']):>8}"
            f" {_fmt_ns(row['python_minus_rust_ns']):>10} {_fmt_ns(row['kotlin_minus_rust_ns']):>10}"
        )
    print()
    print("median of 7 rounds, ns per call; Rust = the FFI function's body called directly (no FFI).")
    out = {
        "method": "median of 7 timed rounds of ~0.15 s each after calibration; ns per call",
        "host": {"machine": platform.machine(), "system": platform.system(), "cpus": os.cpu_count()},
        "runtimes": {lang: runs[lang].get("runtime", "") for lang in runs},
        "rows": rows,
        "raw": runs,
    }
    pathlib.Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"written: {args.out}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--fixtures", required=True)
    m.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("rust")
    r.add_argument("python")
    r.add_argument("kotlin")
    r.add_argument("--out", required=True)
    args = p.parse_args()
    {"measure": measure, "report": report}[args.cmd](args)


if __name__ == "__main__":
    main()
