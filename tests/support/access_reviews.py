"""What an identity may do on a real API server, asked as that identity (a client that sends
``Impersonate-User``): one access review, or every rule it holds in a namespace."""

from __future__ import annotations

from typing import Any

from kubernetes import client

Grant = tuple[str, str, str, str]
"""``(verb, group, resource, subresource)``; ``""`` for the core group or no subresource."""

EVERY_USER = {
    ("create", "authorization.k8s.io", "selfsubjectaccessreviews"),
    ("create", "authorization.k8s.io", "selfsubjectrulesreviews"),
    ("create", "authentication.k8s.io", "selfsubjectreviews"),
}
"""What Kubernetes grants every authenticated user (``system:basic-user``), as ``granted`` lists it."""


def _authorization(api: client.ApiClient) -> Any:
    # The generated client is typed for its model classes; reviews are sent as plain dicts.
    return client.AuthorizationV1Api(api)


def may(api: client.ApiClient, namespace: str, grant: Grant) -> bool:
    """A SelfSubjectAccessReview of ``grant`` in ``namespace``."""
    verb, group, resource, subresource = grant
    attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": resource}
    if subresource:
        attributes["subresource"] = subresource
    spec = {"resourceAttributes": attributes}
    review = _authorization(api).create_self_subject_access_review({"spec": spec})
    return bool(review.status.allowed)


def granted(api: client.ApiClient, namespace: str) -> set[tuple[str, str, str]]:
    """A SelfSubjectRulesReview of ``namespace``: each ``(verb, group, resource)`` it lists, a
    subresource as ``resource/subresource``."""
    review = _authorization(api).create_self_subject_rules_review({"spec": {"namespace": namespace}})
    return {
        (verb, group, resource)
        for rule in review.status.resource_rules
        for verb in rule.verbs
        for group in rule.api_groups or [""]
        for resource in rule.resources or []
    }
