"""Prints how many lines of an Odoo log say that something went wrong outside the tests' own reports.

The module must install and run cleanly: a WARNING, ERROR or CRITICAL line outside the tests' own
reports counts, and so does any line that shows one of the tests' API keys. Those lines are echoed
to stderr so the reason is visible. A log that does not exist counts as one (Odoo did not run).
"""

import re
import sys

BAD_LEVEL = re.compile(r"^\S+ \S+ \d+ (WARNING|ERROR|CRITICAL) ")
TEST_REPORT = re.compile(r"odoo\.addons\.\w+\.tests")
# pytest-odoo imports Odoo's test framework at its start (for subtests), before it enables tests, and Odoo
# logs that as an error; tests cannot be enabled sooner, since a registry loaded with them runs them.
PYTEST_ODOO_START = re.compile(r"ERROR \? odoo\.tests\.common: Importing test framework")
# The API keys the tests configure: none may ever be logged.
TEST_SECRET = re.compile(r"sk-(test|wrong)-[\w-]+")


def main(path: str) -> None:
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            lines = log.readlines()
    except OSError:
        sys.stderr.write(f"no Odoo log at {path}\n")
        print(1)
        return
    stray = [
        line for line in lines
        if BAD_LEVEL.match(line) and not TEST_REPORT.search(line) and not PYTEST_ODOO_START.search(line)
    ]
    stray += [line for line in lines if TEST_SECRET.search(line)]
    for line in stray:
        sys.stderr.write("unexpected log line: " + line[:300].rstrip() + "\n")
    print(len(stray))


if __name__ == "__main__":
    main(sys.argv[1])
