"""The chart's RBAC grants exactly what the operator used across the e2e run (apiserver audit logs; under
pytest-xdist, of every worker's control plane)."""

import pytest
from kubernetes import client
from restores import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT
from session_usage import used_permissions

MINIMUM_E2E_TESTS = 20
# Granted but never seen in the audit log, with why: an admission plugin checks them, no request uses them.
CHECKED_BY_ADMISSION = {
    # OwnerReferencesPermissionEnforcement (on by default on OpenShift; not enabled in the e2e control plane)
    # lets a run be created with blockOwnerDeletion on its schedule only if the creator may update the schedule's
    # finalizers subresource.
    ("update", "dbrestore.io", "aurorarestoreschedules/finalizers"),
}


def granted_permissions(api_client, user_namespace: str, service_account: str) -> set[tuple[str, str, str]]:
    """(verb, apiGroup, resource) from every ClusterRole and Role bound to the ServiceAccount."""
    rbac = client.RbacAuthorizationV1Api(api_client)

    def bound(binding) -> bool:
        return any(s.kind == "ServiceAccount" and s.name == service_account and s.namespace == user_namespace
                   for s in binding.subjects or [])

    rules = []
    for binding in rbac.list_cluster_role_binding().items:
        if bound(binding):
            rules += rbac.read_cluster_role(binding.role_ref.name).rules
    for binding in rbac.list_role_binding_for_all_namespaces().items:
        if bound(binding):
            if binding.role_ref.kind == "ClusterRole":
                rules += rbac.read_cluster_role(binding.role_ref.name).rules
            else:
                rules += rbac.read_namespaced_role(binding.role_ref.name, binding.metadata.namespace).rules
    return {
        (verb, group, resource)
        for rule in rules
        for verb in rule.verbs
        for group in rule.api_groups or [""]
        for resource in rule.resources or []
    }


def compare(granted: set, used: set) -> tuple[set, set]:
    """(used but not granted, granted but never used)."""
    return used - granted, granted - used


def test_compare_reports_one_missing_and_one_extra_permission():
    granted = {("get", "", "secrets"), ("create", "", "events")}
    used = {("get", "", "secrets"), ("patch", "dbrestore.io", "aurorarestores")}
    assert compare(granted, used) == ({("patch", "dbrestore.io", "aurorarestores")}, {("create", "", "events")})


@pytest.mark.after_all_e2e
def test_chart_rbac_matches_what_the_operator_used(control_plane, api_client, request, other_workers_usage):
    if request.session.testscollected < MINIMUM_E2E_TESTS:
        pytest.skip("needs the whole e2e suite in this session")
    user = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
    used, denied = used_permissions(control_plane.read_audit_events(), user)
    for usage in other_workers_usage:  # the other pytest-xdist workers' sessions, each with its own control plane
        used |= {tuple(permission) for permission in usage["kubernetes_permissions"]}
        denied += usage["denied"]
    assert denied == [], f"the apiserver denied: {denied}"
    granted = granted_permissions(api_client, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT)
    missing, unused = compare(granted, used)
    assert missing == set(), f"used but not granted: {sorted(missing)}"
    assert unused - CHECKED_BY_ADMISSION == set(), f"granted but never used: {sorted(unused - CHECKED_BY_ADMISSION)}"
    assert CHECKED_BY_ADMISSION <= granted, f"no longer granted: {sorted(CHECKED_BY_ADMISSION - granted)}"
