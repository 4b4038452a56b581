"""spec.successPolicy for Indexed Jobs (matchSuccessPolicy; beta, on by default in 1.32).

Rules are tried in order; a rule with succeededIndexes matches when all of those indexes
succeeded (or at least succeededCount of them, when given); a rule with only
succeededCount matches when that many indexes succeeded. A match gives the Job the
SuccessCriteriaMet condition with reason SuccessPolicy and "Matched rules at index <i>";
its remaining pods are then deleted (not counted as failures) and it becomes Complete.
"""

from __future__ import annotations

from typing import Any

from controllers.common import objects
from controllers.job import indexes

Obj = dict[str, Any]
REASON = "SuccessPolicy"


def match(job: Obj, succeeded: set[int]) -> str | None:
    policy = objects.spec(job).get("successPolicy")
    if not policy or not succeeded:
        return None
    completions = int(objects.spec(job).get("completions") or 0)
    for position, rule in enumerate(policy.get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = indexes.parse(rule["succeededIndexes"], completions)
            if not required:
                continue
            done = len(required & succeeded)
            if (count is None and done == len(required)) or (count is not None and done >= int(count)):
                return f"Matched rules at index {position}"
        elif count is not None and len(succeeded) >= int(count):
            return f"Matched rules at index {position}"
    return None
