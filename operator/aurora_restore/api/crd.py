"""Build the CustomResourceDefinitions (AuroraRestore, AuroraRestorePolicy, AuroraRestoreSchedule) from the pydantic
models.

crds/ holds the rendered output, one file per CRD, and a test keeps them equal, so each schema is written in
exactly one place.
The JSON schema pydantic emits is turned into a Kubernetes structural schema: references inlined, optional
fields plain (no anyOf null), titles dropped, only scalar defaults kept (the apiserver applies them).
"""

import copy
import re
from typing import Any

import yaml

from . import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from .models import AuroraRestoreSpec, AuroraRestoreStatus
from .policy import POLICY_KIND, POLICY_PLURAL, POLICY_SHORT_NAMES, POLICY_SINGULAR, AuroraRestorePolicySpec
from .schedule import (
    SCHEDULE_KIND, SCHEDULE_NAME_MAX_LENGTH, SCHEDULE_PLURAL, SCHEDULE_SHORT_NAMES, SCHEDULE_SINGULAR,
    TEMPLATE_IDENTIFIER_PATTERN, AuroraRestoreScheduleSpec, AuroraRestoreScheduleStatus,
)

SPEC_RULES = [
    {
        "rule": "self == oldSelf",
        "message": "spec is immutable once accepted: create a new AuroraRestore to restore again",
    },
    {
        "rule": "!has(self.source.pointInTime) || ((!has(self.target.region) || self.target.region == "
        "self.source.region) && !has(self.source.accountId))",
        "message": "spec.source.pointInTime restores in the source cluster's region and account: "
        "leave target.region and source.accountId unset",
    },
    {
        "rule": "!has(self.source.pointInTime) || (!has(self.target.engineVersion) && "
        "(!has(self.target.availabilityZones) || size(self.target.availabilityZones) == 0))",
        "message": "spec.source.pointInTime keeps the source cluster's engine version and zones: leave "
        "target.engineVersion and target.availabilityZones unset (upgrade or move afterwards)",
    },
    {
        "rule": "!has(self.source.clone) || (!has(self.target.engineVersion) && "
        "(!has(self.target.availabilityZones) || size(self.target.availabilityZones) == 0))",
        "message": "spec.source.clone keeps the source cluster's engine version and zones: leave "
        "target.engineVersion and target.availabilityZones unset",
    },
    {
        "rule": "has(self.masterPassword) || !((has(self.users) && size(self.users) > 0) || has(self.verification) "
        "|| has(self.connectionSecret) || has(self.masking) "
        "|| (has(self.hooks) && has(self.hooks.postRestore) && size(self.hooks.postRestore) > 0))",
        "message": "spec.masterPassword is required for users, verification, connectionSecret, masking and hooks",
    },
]
RULES_BY_PATH: dict[tuple[str, ...], list[dict[str, str]]] = {
    ("masterPassword",): [
        {
            "rule": "[has(self.secretRef), has(self.secretsManagerSecretId), "
            "has(self.manageInSecretsManager) && self.manageInSecretsManager].filter(x, x).size() == 1",
            "message": "spec.masterPassword needs exactly one of secretRef, secretsManagerSecretId or "
            "manageInSecretsManager: true",
        }
    ],
    ("source",): [
        {
            "rule": "[has(self.snapshotIdentifier), has(self.latest), has(self.pointInTime), has(self.clone)]"
            ".filter(x, x).size() == 1",
            "message": "spec.source needs exactly one of snapshotIdentifier, latest, pointInTime or clone",
        },
        {
            "rule": "!has(self.accountId) || has(self.roleArn)",
            "message": "spec.source.accountId needs spec.source.roleArn: a role in that account to share from",
        },
    ],
    ("source", "pointInTime"): [
        {
            "rule": "has(self.restoreTime) != (has(self.useLatestRestorableTime) && self.useLatestRestorableTime)",
            "message": "spec.source.pointInTime needs exactly one of restoreTime or useLatestRestorableTime: true",
        }
    ],
    ("target", "serverlessV2Scaling"): [
        {"rule": "self.minCapacity <= self.maxCapacity", "message": "minCapacity must not exceed maxCapacity"}
    ],
    ("target", "instances", "performanceInsights"): [
        {
            "rule": "!has(self.retentionPeriod) || self.retentionPeriod == 7 || self.retentionPeriod == 731 || "
            "(self.retentionPeriod % 31 == 0 && self.retentionPeriod >= 31 && self.retentionPeriod <= 713)",
            "message": "performanceInsights.retentionPeriod: AWS takes 7, 731 or a multiple of 31 from 31 to 713",
        },
        {
            "rule": "self.enabled || (!has(self.kmsKeyId) && !has(self.retentionPeriod))",
            "message": "performanceInsights.kmsKeyId and retentionPeriod need enabled: true",
        },
    ],
    ("target", "instances", "enhancedMonitoring"): [
        {
            "rule": "(self.interval > 0) == has(self.roleArn)",
            "message": "enhancedMonitoring.roleArn is required when interval is above 0, and only then",
        }
    ],
}

PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Source", "type": "string", "jsonPath": ".status.snapshot.identifier"},
    {"name": "Target", "type": "string", "jsonPath": ".spec.target.clusterIdentifier"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
]


POLICY_SPEC_RULES = [
    {
        "rule": "(has(self.namespaces) && size(self.namespaces) > 0) || has(self.namespaceSelector)",
        "message": "spec needs namespaces or namespaceSelector: a policy that covers no namespace allows nothing",
    },
]
POLICY_PRINTER_COLUMNS = [
    {"name": "Namespaces", "type": "string", "jsonPath": ".spec.namespaces"},
    {"name": "Replace", "type": "boolean", "jsonPath": ".spec.replace.allowed"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


SCHEDULE_PRINTER_COLUMNS = [
    {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
    {"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend"},
    {"name": "Active", "type": "string", "jsonPath": ".status.active[*].name"},
    {"name": "Last Schedule", "type": "date", "jsonPath": ".status.lastScheduleTime"},
    {"name": "Last Success", "type": "date", "jsonPath": ".status.lastSuccessfulTime"},
    {"name": "Next", "type": "string", "jsonPath": ".status.nextScheduleTime"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
]
SCHEDULE_ROOT_RULES = [
    {
        "rule": f"self.metadata.name.size() <= {SCHEDULE_NAME_MAX_LENGTH}",
        "message": f"an AuroraRestoreSchedule's name has at most {SCHEDULE_NAME_MAX_LENGTH} characters: its runs are "
        "named <schedule>-<minutes since the epoch> and labelled with it",
    },
]


def structural_schema(model: type, rules_by_path: dict[tuple[str, ...], list] | None = None) -> dict[str, Any]:
    """The model's JSON schema as a Kubernetes structural schema, with CEL rules attached by field path."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop("$defs", {})
    return _convert(schema, definitions, (), rules_by_path or {})


def _convert(node: dict, definitions: dict, path: tuple[str, ...], rules: dict) -> dict[str, Any]:
    if "$ref" in node:
        resolved = dict(definitions[node["$ref"].rsplit("/", 1)[-1]])
        resolved.update({k: v for k, v in node.items() if k != "$ref"})
        return _convert(resolved, definitions, path, rules)
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express {node} in a structural schema")
        merged = {k: v for k, v in node.items() if k != "anyOf"}
        merged.update(options[0])
        return _convert(merged, definitions, path, rules)

    out: dict[str, Any] = {}
    if "description" in node:
        out["description"] = " ".join(node["description"].split())
    kind = node.get("type")
    if "enum" in node and kind is None:
        kind = "string"
    if node.get("format") == "date-time":
        out.update(type="string", format="date-time")
    elif kind == "object" and node.get("x-kubernetes-preserve-unknown-fields"):  # an embedded object (a pod template)
        out.update({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    elif kind == "object":
        out["type"] = "object"
        if "properties" in node:
            out["properties"] = {
                name: _convert(child, definitions, path + (name,), rules) for name, child in node["properties"].items()
            }
            if node.get("required"):
                out["required"] = list(node["required"])
        elif "additionalProperties" in node:
            out["additionalProperties"] = _convert(node["additionalProperties"], definitions, path, rules)
    elif kind == "array":
        out["type"] = "array"
        out["items"] = _convert(node["items"], definitions, path, rules)
    elif kind == "number":
        out["type"] = "number"
    elif kind in ("string", "integer", "boolean"):
        out["type"] = kind
    else:
        raise ValueError(f"unsupported schema node at {'.'.join(path) or '<root>'}: {node}")
    for key in ("enum", "pattern", "minimum", "maximum", "maxLength", "minLength"):
        if key in node:
            out[key] = node[key]
    if "default" in node and isinstance(node["default"], (str, int, float, bool)):
        out["default"] = node["default"]
    if path in rules:
        out["x-kubernetes-validations"] = rules[path]
    return out


def build_crd() -> dict[str, Any]:
    """The CRD manifest for aurorarestores.dbrestore.io."""
    spec_schema = structural_schema(AuroraRestoreSpec, RULES_BY_PATH)
    spec_schema["x-kubernetes-validations"] = SPEC_RULES
    return _crd(
        KIND, PLURAL, SINGULAR, SHORT_NAMES, "Namespaced", PRINTER_COLUMNS,
        "AuroraRestore restores one Amazon Aurora cluster from a snapshot.",
        spec_schema, structural_schema(AuroraRestoreStatus),
    )


def build_policy_crd() -> dict[str, Any]:
    """The CRD manifest for aurorarestorepolicies.dbrestore.io: cluster-scoped, written by cluster admins."""
    spec_schema = structural_schema(AuroraRestorePolicySpec)
    spec_schema["x-kubernetes-validations"] = POLICY_SPEC_RULES
    return _crd(
        POLICY_KIND, POLICY_PLURAL, POLICY_SINGULAR, POLICY_SHORT_NAMES, "Cluster", POLICY_PRINTER_COLUMNS,
        "AuroraRestorePolicy decides what the AuroraRestores of some namespaces may restore, replace and read.",
        spec_schema, None,
    )


def template_schema() -> dict[str, Any]:
    """An AuroraRestore spec as a schedule's template: the AuroraRestore CRD's schema and rules, except that the
    template is not immutable and target.clusterIdentifier may hold {date} and {time}."""
    schema = copy.deepcopy(structural_schema(AuroraRestoreSpec, RULES_BY_PATH))  # the rules are shared: copy them
    schema["x-kubernetes-validations"] = [dict(rule) for rule in SPEC_RULES if rule["rule"] != "self == oldSelf"]
    _retarget_messages(schema)
    identifier = schema["properties"]["target"]["properties"]["clusterIdentifier"]
    identifier["pattern"] = TEMPLATE_IDENTIFIER_PATTERN
    identifier["description"] = ("Identifier of the cluster to create (1-63 letters/digits/-); {date} (YYYYMMDD) "
                                 "and {time} (HHMM) are replaced by the scheduled time in the schedule's timeZone.")
    return schema


def _retarget_messages(node: Any) -> None:
    """The rules' messages name their fields from an AuroraRestore (spec.source...); in a schedule the same fields
    are under spec.template."""
    if isinstance(node, dict):
        for rule in node.get("x-kubernetes-validations", []):
            if "message" in rule:
                rule["message"] = re.sub(r"\bspec\.", "spec.template.", rule["message"])
        for value in node.values():
            _retarget_messages(value)
    elif isinstance(node, list):
        for value in node:
            _retarget_messages(value)


def build_schedule_crd() -> dict[str, Any]:
    """The CRD manifest for aurorarestoreschedules.dbrestore.io."""
    spec_schema = structural_schema(AuroraRestoreScheduleSpec)
    template = template_schema()
    template["description"] = spec_schema["properties"]["template"]["description"]
    spec_schema["properties"]["template"] = template
    crd = _crd(
        SCHEDULE_KIND, SCHEDULE_PLURAL, SCHEDULE_SINGULAR, SCHEDULE_SHORT_NAMES, "Namespaced",
        SCHEDULE_PRINTER_COLUMNS,
        "AuroraRestoreSchedule creates AuroraRestores from a template on a cron schedule, like a CronJob its Jobs.",
        spec_schema, structural_schema(AuroraRestoreScheduleStatus),
    )
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] = SCHEDULE_ROOT_RULES
    return crd


def build_crds() -> list[dict[str, Any]]:
    return [build_crd(), build_policy_crd(), build_schedule_crd()]


def _crd(kind: str, plural: str, singular: str, short_names: list[str], scope: str, columns: list[dict],
         description: str, spec_schema: dict, status_schema: dict | None) -> dict[str, Any]:
    properties = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                  "spec": spec_schema}
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True}
    if status_schema is not None:
        properties["status"] = status_schema
        version["subresources"] = {"status": {}}
    version["additionalPrinterColumns"] = columns
    version["schema"] = {"openAPIV3Schema": {"type": "object", "description": description, "required": ["spec"],
                                             "properties": properties}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": short_names,
                "categories": ["aurora"],
            },
            "versions": [version],
        },
    }


HEADER = "# Generated from the pydantic models by `aurora-restore crd`; do not edit by hand.\n"


def render_crd(crd: dict[str, Any]) -> str:
    """One CRD as committed under crds/<name>.yaml (and the chart's crds/)."""
    return HEADER + yaml.safe_dump(crd, sort_keys=False, width=120)


def render_crds() -> str:
    """Every CRD, as one YAML stream (what `aurora-restore crd` prints)."""
    return "---\n".join(render_crd(crd) for crd in build_crds())
