"""The chart's RBAC grants exactly what the operator used across this e2e session (apiserver audit log)."""

import pytest
from kubernetes import client
from restores import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT

MINIMUM_E2E_TESTS = 20
# Granted but never seen in the audit log, with why: an admission plugin checks them, no request uses them.
CHECKED_BY_ADMISSION = {
    # OwnerReferencesPermissionEnforcement (on by default on OpenShift; not enabled in the e2e control plane)
    # lets a run be created with blockOwnerDeletion on its schedule only if the creator may update the schedule's
    # finalizers subresource.
    ("update", "dbrestore.io", "aurorarestoreschedules/finalizers"),
}


def used_permissions(events: list[dict], user: str) -> tuple[set[tuple[str, str, str]], list[str]]:
    """(verb, apiGroup, resource[/subresource]) the user exercised, and the requests that were denied."""
    used, denied = set(), []
    for event in events:
        if event["user"]["username"] != user or "objectRef" not in event or event.get("stage") != "ResponseComplete":
            continue
        ref = event["objectRef"]
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        used.add((event["verb"], ref.get("apiGroup", ""), resource))
        if event.get("responseStatus", {}).get("code") == 403:
            denied.append(f"{event['verb']} {event['requestURI']}")
    return used, denied


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
def test_chart_rbac_matches_what_the_operator_used(control_plane, api_client, request):
    if request.session.testscollected < MINIMUM_E2E_TESTS:
        pytest.skip("needs the whole e2e suite in this session")
    user = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
    used, denied = used_permissions(control_plane.read_audit_events(), user)
    assert denied == [], f"the apiserver denied: {denied}"
    granted = granted_permissions(api_client, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT)
    missing, unused = compare(granted, used)
    assert missing == set(), f"used but not granted: {sorted(missing)}"
    assert unused - CHECKED_BY_ADMISSION == set(), f"granted but never used: {sorted(unused - CHECKED_BY_ADMISSION)}"
    assert CHECKED_BY_ADMISSION <= granted, f"no longer granted: {sorted(CHECKED_BY_ADMISSION - granted)}"
