"""Prints '<passed> <failed>' from an Odoo test log.

Odoo ends a test run with "<F> failed, <E> error(s) of <N> tests when loading database".
A log without that line means the tier did not run, which counts as one failure. So do
ERROR/CRITICAL lines outside the tests' own output (the module must install cleanly).
"""
import re
import sys

RESULT = re.compile(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests when loading database")
LOG_LEVEL = re.compile(r"^\S+ \S+ \d+ (ERROR|CRITICAL) ")


def main(path: str) -> None:
    with open(path, encoding="utf-8", errors="replace") as log:
        lines = log.readlines()
    results = [RESULT.search(line) for line in lines]
    results = [m for m in results if m]
    stray_errors = sum(1 for line in lines if LOG_LEVEL.match(line) and " odoo.addons.ai_cost_optimizer.tests" not in line
                       and "when loading database" not in line)
    if not results:
        print(0, 1 + stray_errors)
        return
    failed, errors, total = (int(x) for x in results[-1].groups())
    bad = failed + errors
    print(total - bad, bad if bad else stray_errors)


if __name__ == "__main__":
    main(sys.argv[1])
