"""Prints '<passed> <failed>' from an Odoo test log.

Odoo ends a test run with "<F> failed, <E> error(s) of <N> tests when loading database".
A log without that line means the tier did not run, which counts as one failure. A WARNING,
ERROR or CRITICAL line outside the tests' own reports also counts as a failure: the module must
install and run cleanly; so does any line that shows one of the tests' API keys. Those lines
are echoed to stderr so the reason is visible.
"""

import re
import sys

RESULT = re.compile(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests when loading database")
BAD_LEVEL = re.compile(r"^\S+ \S+ \d+ (WARNING|ERROR|CRITICAL) ")
TEST_REPORT = re.compile(r"odoo\.addons\.\w+\.tests|when loading database")
# The API keys the tests configure: none may ever be logged.
TEST_SECRET = re.compile(r"sk-(test|wrong)-[\w-]+")


def main(path: str) -> None:
    with open(path, encoding="utf-8", errors="replace") as log:
        lines = log.readlines()
    results = [match for match in map(RESULT.search, lines) if match]
    stray = [line for line in lines if BAD_LEVEL.match(line) and not TEST_REPORT.search(line)]
    stray += [line for line in lines if TEST_SECRET.search(line)]
    for line in stray:
        sys.stderr.write("unexpected log line: " + line[:300].rstrip() + "\n")
    if not results:
        print(0, 1 + len(stray))
        return
    failed, errors, total = (int(x) for x in results[-1].groups())
    bad = failed + errors
    print(total - bad, bad or len(stray))


if __name__ == "__main__":
    main(sys.argv[1])
