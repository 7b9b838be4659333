"""Kubernetes label matching, shared by the RBAC aggregation controller and the network/probe checks.

Written by hand: no maintained Python package evaluates label selectors offline (the kubernetes client
only sends them to the API server), and the rules are short (apimachinery `labels.Selector`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def labels_match(required: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """A plain `key: value` selector (a Service's `spec.selector`, a LabelSelector's `matchLabels`):
    every pair must be in `labels`. An empty or missing one matches everything."""
    return all(labels.get(key) == value for key, value in (required or {}).items())


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """metav1.LabelSelector: matchLabels AND every matchExpression; `{}` (or None) matches everything.

    Raises ValueError for an operator other than In, NotIn, Exists or DoesNotExist (the API server
    rejects such a selector)."""
    selector = selector or {}
    if not labels_match(selector.get("matchLabels"), labels):
        return False
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression.get("key"), expression.get("operator")
        values = set(expression.get("values") or ())
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            raise ValueError(f"label selector operator {operator!r} is not In, NotIn, Exists or DoesNotExist")
        if not ok:
            return False
    return True
