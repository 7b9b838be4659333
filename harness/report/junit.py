"""junit.xml: one testsuite per verdict-matrix row, one testcase per check of each cell.

JUnit has no "not verified": such checks are <skipped> with the reason, so no CI tool counts them as passed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

from harness.report.model import Report


def render_junit(report: Report) -> str:
    d = report.data
    root = ET.Element("testsuites", name=d["title"])
    suites: dict[str, list[dict]] = {}
    for cell in d["cells"]:
        suites.setdefault(cell["scenario"], []).append(cell)
    totals: Counter[str] = Counter()
    for scenario, cells in suites.items():
        suite = ET.SubElement(root, "testsuite", name=scenario)
        counts: Counter[str] = Counter()
        for cell in cells:
            for check in cell["checks"]:
                case = ET.SubElement(suite, "testcase", classname=f"{scenario}.{cell['variant']}.{cell['mode']}",
                                     name=check["name"])
                counts["tests"] += 1
                blocking = [f for f in check["findings"] if f["blocking"]]
                if check["status"] == "fail":
                    counts["failures"] += 1
                    failure = ET.SubElement(case, "failure", message=blocking[0]["message"] if blocking else "fail",
                                            type=blocking[0]["id"] if blocking else "fail")
                    failure.text = "\n".join(f"{f['id']}: {f['subject']}: {f['message']}" for f in blocking)
                elif check["status"] in ("not-verified", "skipped"):
                    counts["skipped"] += 1
                    ET.SubElement(case, "skipped", message=f"{check['status']}: {check['reason']}")
                declared = [f for f in check["findings"] if f["expected"]]
                if declared:
                    out = ET.SubElement(case, "system-out")
                    out.text = "\n".join(f"declared ({f['evidence'].get('declared_by', '')}): {f['message']}"
                                         for f in declared)
        for key in ("tests", "failures", "skipped"):
            suite.set(key, str(counts[key]))
            totals[key] += counts[key]
        suite.set("errors", "0")
    for key in ("tests", "failures", "skipped"):
        root.set(key, str(totals[key]))
    root.set("errors", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
