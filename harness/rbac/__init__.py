"""Effective permissions: the static evaluator over manifests and the live SubjectAccessReview matrix."""
