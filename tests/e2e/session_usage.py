"""What the operator used in an e2e session: its Kubernetes permissions (the apiserver's audit log) and its AWS
actions (the simulator's request log). The RBAC and IAM audits compare them with what the chart and the IAM
policies grant; under pytest-xdist each worker's session writes them down for those audits (workers.py)."""

from collections import defaultdict

OPERATOR_USER_AGENT = "aurora-restore-operator"


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


def operator_actions(simulator, account: str) -> set[str]:
    """AWS actions the operator (its User-Agent names it) called in `account`, as IAM spells them."""
    return operator_actions_by_account(simulator.calls(account=account)).get(account, set())


def operator_actions_by_account(calls: list[dict]) -> dict[str, set[str]]:
    """The operator's AWS actions in `calls` (the simulator's request log), by account."""
    actions = defaultdict(set)
    for call in calls:
        if OPERATOR_USER_AGENT in call.get("user_agent", "") and call["service"] and call["action"]:
            actions[call["account"]].add(f"{call['service']}:{call['action']}")
    return dict(actions)
