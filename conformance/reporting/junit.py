"""JUnit XML for CI dashboards: one test suite per target, one test case per contract case."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from conformance.reporting.results import Case, RunResults

_TAGS = {"failed": "failure", "error": "error", "skipped": "skipped", "xfailed": "skipped"}


def _tag(case: Case) -> str | None:
    """The case's element: a failure that does not fail the run (should-level, without
    --strict) is <skipped>, so that the dashboard agrees with the exit status."""
    if case.outcome == "failed" and not case.blocking:
        return "skipped"
    return _TAGS.get(case.outcome)


def write_junit(results: RunResults, path: str) -> None:
    """Write ``junit.xml`` at ``path``; test case names are contract ids."""
    cases = [(result, case) for result in results.sorted_results() for case in result.cases]
    tags = [_tag(case) for _, case in cases]
    suite = ET.Element("testsuite", {
        "name": f"socketserver-conformance[{results.target.get('name', 'target')}]",
        "tests": str(len(cases)),
        "failures": str(tags.count("failure")),
        "errors": str(tags.count("error")),
        "skipped": str(tags.count("skipped")),
        "time": f"{sum(case.duration for _, case in cases):.3f}",
    })
    for (result, case), tag in zip(cases, tags):
        element = ET.SubElement(suite, "testcase", {
            "classname": result.contract.id,
            "name": f"{result.contract.id}[{case.server}]",
            "time": f"{case.duration:.3f}",
        })
        if tag is None:
            continue
        summary = (case.message or case.outcome).splitlines()[0]
        if case.outcome == "failed" and not case.blocking:
            properties = ET.SubElement(element, "properties")
            ET.SubElement(properties, "property", {"name": "outcome", "value": "failed"})
            ET.SubElement(properties, "property", {"name": "blocking", "value": "false"})
            summary = f"failed (should-level, not blocking without --strict): {summary}"
        child = ET.SubElement(element, tag, {"message": summary})
        child.text = "\n\n".join(filter(None, [case.message, case.counterexample,
                                               case.reproduce]))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    partial = path + ".partial"
    ET.ElementTree(root).write(partial, encoding="utf-8", xml_declaration=True)
    os.replace(partial, path)
