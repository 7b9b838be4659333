"""junit.xml: the verdict's counts in JUnit terms, so a CI tool shows the same numbers as the report.

- Suite `decisions`: one testcase per blocking decision (a <failure> with what to do and where) and one per
  accepted decision (passed, its reason in system-out). failures == verdict.blocking_decisions.
- One suite per verdict-matrix row: one testcase per check of each cell that did not fail (a failed check is
  counted once, as its decision above). JUnit has no "not verified": such checks are <skipped> with the
  reason, so no CI tool counts them as passed. skipped == verdict.not_verified.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

from harness.report.model import Report


def _where(d: dict[str, Any]) -> str:
    hidden = d["cells_total"] - len(d["cells"])
    return (f"modes: {', '.join(d['modes'])}; pairs: {', '.join(d['pairs']) or '-'}; cells: {', '.join(d['cells'])}"
            + (f" and {hidden} more (report.json)" if hidden else ""))


def render_junit(report: Report) -> str:
    d = report.data
    v = d["verdict"]
    root = ET.Element("testsuites", name=d["title"])
    totals: Counter[str] = Counter()
    suite = ET.SubElement(root, "testsuite", name="decisions")
    counts: Counter[str] = Counter()
    for dec in d["decisions"] + d["accepted"]:
        case = ET.SubElement(suite, "testcase", classname=f"decisions.{'-'.join(dec['tiers'])}",
                             name=f"{dec['check']} {dec['subject']}")
        counts["tests"] += 1
        if dec["blocking"]:
            counts["failures"] += 1
            failure = ET.SubElement(case, "failure", message=dec["message"], type=dec["check"])
            failure.text = "\n".join([f"what to do: {dec['action']}", f"where: {_where(dec)}",
                                      *(f"{f['id']}: {f['subject']}: {f['message']}" for f in dec["examples"])])
        else:
            ET.SubElement(case, "system-out").text = f"accepted: {dec['accepted']}"
    hidden = v["blocking_decisions"] + v["accepted_decisions"] - len(d["decisions"]) - len(d["accepted"])
    if hidden > 0:  # report.json caps its lists; the counts still hold every decision
        properties = ET.Element("properties")  # JUnit puts properties before the testcases
        ET.SubElement(properties, "property", name="decisions-not-listed", value=f"{hidden} (see report.json counts)")
        suite.insert(0, properties)
    _totals(suite, counts, totals)
    suites: dict[str, list[dict]] = {}
    for cell in d["cells"]:
        suites.setdefault(cell["scenario"], []).append(cell)
    for scenario, cells in suites.items():
        suite = ET.SubElement(root, "testsuite", name=scenario)
        counts = Counter()
        for cell in cells:
            for check in cell["checks"]:
                if check["status"] == "fail":
                    continue  # counted once, as the decision(s) it belongs to
                case = ET.SubElement(suite, "testcase", classname=f"{scenario}.{cell['variant']}.{cell['mode']}",
                                     name=check["name"])
                counts["tests"] += 1
                if check["status"] in ("not-verified", "skipped"):
                    counts["skipped"] += 1
                    ET.SubElement(case, "skipped", message=f"{check['status']}: {check['reason']}")
                declared = [f for f in check["findings"] if f["expected"]]
                if declared:
                    out = ET.SubElement(case, "system-out")
                    out.text = "\n".join(f"declared ({f['evidence'].get('declared_by', '')}): {f['message']}"
                                         for f in declared)
        _totals(suite, counts, totals)
    for key in ("tests", "failures", "skipped"):
        root.set(key, str(totals[key]))
    root.set("errors", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _totals(suite: ET.Element, counts: Counter[str], totals: Counter[str]) -> None:
    for key in ("tests", "failures", "skipped"):
        suite.set(key, str(counts[key]))
        totals[key] += counts[key]
    suite.set("errors", "0")
