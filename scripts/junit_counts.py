"""Prints '<passed> <failed>' from a pytest JUnit XML report (failed counts errors too).

Counted by test case, not from the suite's totals, which count each subtest as a test too.
"""
import sys
import xml.etree.ElementTree as ET

FAILED = ("failure", "error")


def main(path: str) -> None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        print(0, 1)
        return
    passed = failed = 0
    for case in root.iter("testcase"):
        outcomes = {child.tag for child in case}
        if outcomes & set(FAILED):
            failed += 1
        elif "skipped" not in outcomes:
            passed += 1
    print(passed, failed)


if __name__ == "__main__":
    main(sys.argv[1])
