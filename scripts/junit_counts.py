"""Prints '<passed> <failed>' from a pytest JUnit XML report (failed counts errors too)."""
import sys
import xml.etree.ElementTree as ET


def main(path: str) -> None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        print(0, 1)
        return
    suites = [root] if root.tag == "testsuite" else list(root)
    total = failed = skipped = 0
    for suite in suites:
        total += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    print(total - failed - skipped, failed)


if __name__ == "__main__":
    main(sys.argv[1])
