"""JUnit XML for CI dashboards: one test suite per target, one test case per contract case."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from conformance.reporting.results import RunResults


def write_junit(results: RunResults, path: str) -> None:
    """Write ``junit.xml`` at ``path``; test case names are contract ids."""
    cases = [(result, case) for result in results.sorted_results() for case in result.cases]
    suite = ET.Element("testsuite", {
        "name": f"socketserver-conformance[{results.target.get('name', 'target')}]",
        "tests": str(len(cases)),
        "failures": str(sum(case.outcome == "failed" for _, case in cases)),
        "errors": str(sum(case.outcome == "error" for _, case in cases)),
        "skipped": str(sum(case.outcome in ("skipped", "xfailed") for _, case in cases)),
        "time": f"{sum(case.duration for _, case in cases):.3f}",
    })
    for result, case in cases:
        element = ET.SubElement(suite, "testcase", {
            "classname": result.contract.id,
            "name": f"{result.contract.id}[{case.server}]",
            "time": f"{case.duration:.3f}",
        })
        detail = "\n\n".join(filter(None, [case.message, case.counterexample, case.reproduce]))
        tag = {"failed": "failure", "error": "error", "skipped": "skipped",
               "xfailed": "skipped"}.get(case.outcome)
        if tag is not None:
            summary = (case.message or case.outcome).splitlines()[0]
            child = ET.SubElement(element, tag, {"message": summary})
            child.text = detail
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
