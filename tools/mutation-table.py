#!/usr/bin/env python3
"""mutation-table.py [--survivors] MODULE...: one row per module from PIT's target/pit-reports/mutations.xml;
with --survivors, then each surviving mutant (class.method:line, what PIT changed), to kill or list in docs/testing.md.

score    = killed / all mutants (PIT's mutation score; a timed-out or crashing mutant counts as killed)
strength = killed / mutants some test reached (PIT's test strength: no-coverage mutants left out)
"""
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

KILLED = {"KILLED", "TIMED_OUT", "MEMORY_ERROR", "RUN_ERROR"}


def count(report):
    c = {"all": 0, "killed": 0, "survived": 0, "no_coverage": 0}
    for m in ET.parse(report).getroot().iter("mutation"):
        status = m.get("status")
        c["all"] += 1
        if status in KILLED:
            c["killed"] += 1
        elif status == "NO_COVERAGE":
            c["no_coverage"] += 1
        else:
            c["survived"] += 1
    return c


def pct(a, b):
    return f"{100 * a / b:.0f} %" if b else "-"


def survivors(modules):
    for mod in modules:
        report = Path(mod) / "target" / "pit-reports" / "mutations.xml"
        try:
            mutations = list(ET.parse(report).getroot().iter("mutation"))
        except (OSError, ET.ParseError):
            continue
        for m in mutations:
            if m.get("status") == "SURVIVED":
                cls = m.findtext("mutatedClass").rsplit(".", 1)[-1]
                print(f"{mod}: {cls}.{m.findtext('mutatedMethod')}:{m.findtext('lineNumber')}: {m.findtext('description')}")


def main(modules):
    rows, total = [], {"all": 0, "killed": 0, "survived": 0, "no_coverage": 0}
    for mod in modules:
        report = Path(mod) / "target" / "pit-reports" / "mutations.xml"
        try:
            c = count(report)
        except (OSError, ET.ParseError):   # none yet, or PIT is still writing it
            rows.append((mod, "no report", "", "", "", "", ""))
            continue
        for k in total:
            total[k] += c[k]
        rows.append((mod, c["all"], c["killed"], c["survived"], c["no_coverage"],
                     pct(c["killed"], c["all"]), pct(c["killed"], c["all"] - c["no_coverage"])))
    if len(modules) > 1:
        rows.append(("all", total["all"], total["killed"], total["survived"], total["no_coverage"],
                     pct(total["killed"], total["all"]), pct(total["killed"], total["all"] - total["no_coverage"])))
    head = ("module", "mutations", "killed", "survived", "no coverage", "score", "test strength")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths))) + " |"
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    return 0 if all(r[1] != "no report" for r in rows) else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    listing = "--survivors" in args
    args = [a for a in args if a != "--survivors"]
    rc = main(args)
    if listing:
        print()
        survivors(args)
    sys.exit(rc)
