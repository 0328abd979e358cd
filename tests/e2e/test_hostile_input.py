"""Hostile input: generated AuroraRestore and AuroraRestorePolicy specs against the real kube-apiserver with the
operator running, every restore a dry run (`dryRun: true` is forced onto every case), so nothing is restored.

Cases per run: RESTORE_CASES (240) restores and POLICY_CASES (40) policies, plus the explicit examples of each.
HOSTILE_CASES=<n> raises the number of restores by hand (never below 240). The hypothesis seed is fixed
(HOSTILE_SEED, default 20261201, printed by the test): the same code draws the same cases on every run.

Each restore case is a valid dry run (a snapshot made for the test, a target identifier of its own, so no two
cases wait for each other's target Lease) with one to three fields replaced by hostile values (in half the cases
only fields the CRD takes any string in, so that as many reach the operator as the apiserver refuses): unicode and
control characters in every string field, strings of 10,000 characters and lists (and tag maps) of 1,000
entries, SQL in user names, database names and verification queries, globs that match everything, negative
and huge counts and durations, values of the wrong JSON type, and other kinds of source. Each must end in
exactly one of:

- refused at admission: the apiserver answers 422 or 400 with a non-empty message;
- status.phase Failed with a failure message naming the field at fault (a `spec.` path);
- status.phase Planned.

And over the whole run: the operator process is still the one that started (no crash loop), its log holds no
traceback and no "unexpected error" line, and every DB cluster, instance and snapshot identifier the simulator
saw in a request obeys RDS's rules (the simulator's rulebook: 1 to 63 letters, digits or hyphens, first a
letter, no "--", no trailing "-"; a snapshot may be named by ARN, and an automated one is "rds:<name>"), as do
the role ARNs and external IDs sent to STS (AssumeRole: RoleArn 20 to 2048 characters, ExternalId 2 to 1224
of letters, digits and _+=,.@:/-).

Policies are drawn the same way (globs "*", "**", "?*" in every field, hostile strings, oversized lists, a
negative or huge maxInstances) and created first, named so that they sort before the session's policy: every
restore of the run is then checked against each of them that covers its namespace. A policy the apiserver
accepts must be one the operator's model accepts too (else the operator would silently ignore it). The run's
own base policy (the session's, plus every webhook host) covers its namespace, so the hostile webhook URLs get
past the policy and the URL guard must be what refuses them: each webhook entry of a restore a policy allowed
ends Failed at its first attempt with the guard's reason (GUARD_REFUSALS), never the URL.

The NUL character: JSON carries it ("\\u0000") and the apiserver accepts and stores it in a string field (the
test checks that first, with a tag value), so it is generated like any other control character.

Run time: about a minute on an idle 2-core machine (the control plane's start-up aside), two under load.

How cases are drawn: the strategies are written by hand from the models (api/models.py, api/policy.py), not
derived with hypothesis-jsonschema from the CRD: a schema-derived strategy generates only documents the schema
accepts, while most of the value here is in what it refuses, in values of the wrong type and in what passes
the CRD but not the operator. A hypothesis `@given` with a fixed seed and no shrinking collects the cases;
they are then submitted in batches of BATCH_SIZE and each batch is waited for as a whole, because the operator
polls and one restore at a time would take far too long.
"""

import json
import os
import re
import time
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from restores import (
    SESSION_POLICY, create_policy, create_restore, delete_policy, get_restore, make_source, wait_for_phase,
    wait_until,
)

from aurora_restore.api import GROUP, KIND, PLURAL, VERSION
from aurora_restore.api.policy import AuroraRestorePolicySpec
from aurora_restore_devenv.simulator import rulebook

# Restores per run in CI; HOSTILE_CASES raises it by hand.
RESTORE_CASES = 240
CASES = max(RESTORE_CASES, int(os.environ.get("HOSTILE_CASES", RESTORE_CASES)))
POLICY_CASES = 40
SEED = int(os.environ.get("HOSTILE_SEED", "20261201"))
BATCH_SIZE = 60
SETTLE_SECONDS = 150  # per batch: the longest a batch of dry runs may take to reach Planned or Failed

# --- values ---------------------------------------------------------------------------------------------------

SQL = [
    "x'; DROP TABLE users; --",
    '"; DROP DATABASE postgres; --',
    "1' OR '1'='1",
    "admin'--",
    "'); DELETE FROM pg_authid; --",
    "$$; DROP TABLE t; $$",
    "`; SHUTDOWN; --",
    "x\\'; SELECT pg_sleep(30); --",
    "Robert'); DROP TABLE students;--",
]
GLOBS = ["*", "**", "?*", "*?*", "***", "[*]", "[", "[!]", "[z-a]", "\\*", "*" * 300, "?" * 64]
NEAR_MISSES = [
    "a--b", "a-", "-a", "1a", "a_b", "a.b", "a b", "A" * 64, "a" * 63, "\uff41", "rds:", "rds:a--b",
    "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:a--b", "arn:aws:rds:us-east-1:1:cluster-snapshot:a",
    "arn:aws:iam::123456789012:role/aurora-restore-\u00e9", "arn:aws:iam::123456789012:role/aurora-restore-a b",
    "arn:aws:iam::123456789012:role/aurora-restore-" + "x" * 3000, "us-east-1\n", "US-EAST-1", "db.r6g.large;",
    "sun:05:00-sun:05:29", "25:00-25:30", "0s", "2026-13-45T99:99:99Z", "alias/aws/rds", "../../etc/passwd",
]
DURATIONS = ["-5m", "999999999h", "99999999999999999999d", "99999d999999h9999999m99999999s", "0s", "1", "h", "1h1h",
             "\u0661h", "1.5h", "1e9s", " 6h", "6h\n", "24d", "25d", "100000d", "1s"]
INTS = [-1, 0, 1, 15, 16, 17, 1149, 65536, 10**9, 2**31, 2**63 - 1, -(2**63), 10**30]
OVERSIZED = st.sampled_from(["a", "\u00e9", "\u202e", "-", "'", "*", "\U0001f600", "\x07", "\x00"]).map(
    lambda c: c * 10_000)
CONTROL = st.text(st.characters(categories=("Cc", "Cf", "Zl", "Zp", "Co")), min_size=1, max_size=16)
PLAUSIBLE = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
PRINTABLE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)

texts = st.one_of(
    st.text(max_size=40), st.sampled_from(SQL), st.sampled_from(GLOBS), st.sampled_from(NEAR_MISSES), CONTROL,
    OVERSIZED, PLAUSIBLE,
)
ints = st.one_of(st.sampled_from(INTS), st.integers(-(10**6), 10**6))
wrong_type = st.one_of(
    st.none(), st.booleans(), st.sampled_from(INTS), st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
thousand = st.one_of(
    st.text(max_size=8).map(lambda s: [s] * 1000),
    st.just([f"sg-{n:017x}" for n in range(1000)]),
    st.just([f"us-east-1{chr(97 + n % 26)}{n}" for n in range(1000)]),
)
string_lists = st.one_of(st.lists(texts, max_size=4), thousand, wrong_type)
tag_maps = st.one_of(
    st.dictionaries(texts, texts, max_size=4),
    st.just({f"k{n}": "v" for n in range(1000)}),
    st.sampled_from([{"aws:x": "1"}, {"rds:x": "1"}, {"dbrestore.io/replaceable": "true"}, {"k": "v" * 10_000},
                     {"k" * 129: "v"}, {"": "v"}, {"k": "aws:v"}]),
    wrong_type,
)


def one_of_texts(*valid: Any) -> st.SearchStrategy:
    """A hostile string, a value of the wrong type, or one of the valid values (so some cases get further)."""
    return st.one_of(texts, wrong_type, *(st.sampled_from(valid),) * 2 if valid else ())


STRING = one_of_texts()
INT = st.one_of(ints, wrong_type, texts)
DURATION = st.one_of(st.sampled_from(DURATIONS), st.text("0123456789dhms-+. ", max_size=12), texts)
BOOL = st.one_of(st.booleans(), wrong_type, texts)


def secret_ref() -> st.SearchStrategy:
    return st.fixed_dictionaries({"name": one_of_texts("db-password"), "key": one_of_texts("password")})


users = st.lists(
    st.fixed_dictionaries(
        {"name": st.one_of(st.sampled_from(SQL), texts, st.just("aurora_restore_verifier"), st.just("u" * 64),
                           st.just("app_user")),
         "passwordSecretRef": secret_ref()},
        optional={"access": one_of_texts("readWrite", "readOnly"), "databases": string_lists,
                  "connectionSecret": st.fixed_dictionaries({"name": one_of_texts("app-db")})},
    ),
    min_size=1, max_size=3,
)
verification = st.fixed_dictionaries(
    {"queries": st.lists(st.fixed_dictionaries({"sql": st.one_of(st.sampled_from(SQL), texts)},
                                               optional={"expectRows": INT}), max_size=3)},
    optional={"database": st.one_of(st.sampled_from(SQL), texts), "timeout": DURATION},
)
PASSWORD = {"secretRef": {"name": "db-password", "key": "password"}}
# Secrets the run creates, each holding a webhook URL the operator must refuse (notify/url_guard.py): restores
# whose spec.notification names one end Planned or Failed as any other, and the URL is never sent to. The run's
# base policy allows every webhook host, so what refuses them is the guard: the words its refusal must say.
HOSTILE_HOOK_URLS = {
    "hook-loopback": "http://127.0.0.1:1/x", "hook-decimal": "https://2130706433/x",
    "hook-metadata": "https://169.254.169.254/latest/meta-data/", "hook-mapped": "https://[::ffff:127.0.0.1]/x",
    "hook-userinfo": "https://good.example.com@127.0.0.1/x", "hook-localhost": "https://localhost/x",
    "hook-newline": "https://example.com/\r\nHost: evil", "hook-empty-host": "https:///x",
}
HOSTILE_HOOKS = sorted(HOSTILE_HOOK_URLS)
GUARD_REFUSALS = {
    "hook-loopback": "its scheme is http", "hook-decimal": "loopback", "hook-metadata": "instance metadata service",
    "hook-mapped": "loopback", "hook-userinfo": "user info", "hook-localhost": "loopback",
    "hook-newline": "control characters",
}  # hook-empty-host: a URL without a host matches no webhookHosts glob, so Pending refuses it first
# Allows what the session's policy does and every webhook host, in this test's namespace only.
BASE_POLICY = {**SESSION_POLICY, "webhookHosts": ["*"]}

# (path, values): every field of the spec (api/models.py), to be replaced by a hostile value.
FIELDS: list[tuple[tuple[str, ...], st.SearchStrategy]] = [
    (("source", "region"), one_of_texts("us-east-1", "us-west-2")),
    (("source", "snapshotIdentifier"), STRING),
    (("source", "accountId"), one_of_texts("123456789012")),
    (("source", "roleArn"), one_of_texts("arn:aws:iam::123456789012:role/aurora-restore-x")),
    (("source", "externalId"), STRING),
    (("target", "region"), one_of_texts("us-west-2", "eu-west-1")),
    (("target", "clusterIdentifier"), STRING),
    (("target", "engineVersion"), one_of_texts("15.4", "16.4")),
    (("target", "port"), INT),
    (("target", "dbSubnetGroupName"), STRING),
    (("target", "vpcSecurityGroupIds"), string_lists),
    (("target", "dbClusterParameterGroupName"), STRING),
    (("target", "kmsKeyId"), STRING),
    (("target", "deletionProtection"), BOOL),
    (("target", "iamDatabaseAuthentication"), BOOL),
    (("target", "enableCloudwatchLogsExports"), string_lists),
    (("target", "serverlessV2Scaling"), st.one_of(
        st.fixed_dictionaries({"minCapacity": st.one_of(ints, st.floats(allow_nan=False)),
                               "maxCapacity": st.one_of(ints, st.floats(allow_nan=False))}),
        wrong_type)),
    (("target", "storageType"), one_of_texts("aurora", "aurora-iopt1")),
    (("target", "backupRetentionPeriod"), INT),
    (("target", "preferredBackupWindow"), one_of_texts("03:00-03:30")),
    (("target", "preferredMaintenanceWindow"), one_of_texts("sun:05:00-sun:05:30", "SUN:03:10-sun:03:40")),
    (("target", "copyTagsToSnapshot"), BOOL),
    (("target", "availabilityZones"), string_lists),
    (("target", "networkType"), one_of_texts("IPV4", "DUAL")),
    (("target", "tags"), tag_maps),
    (("target", "roleArn"), one_of_texts("arn:aws:iam::123456789012:role/aurora-restore-x")),
    (("target", "instances", "count"), INT),
    (("target", "instances", "instanceClass"), one_of_texts("db.serverless", "db.r6g.large")),
    (("target", "instances", "dbParameterGroupName"), STRING),
    (("target", "instances", "availabilityZone"), STRING),
    (("target", "instances", "promotionTier"), INT),
    (("target", "instances", "preferredMaintenanceWindow"), one_of_texts("mon:01:00-mon:01:30")),
    (("target", "instances", "performanceInsights"), st.fixed_dictionaries(
        {}, optional={"enabled": BOOL, "kmsKeyId": STRING, "retentionPeriod": INT})),
    (("target", "instances", "enhancedMonitoring"), st.fixed_dictionaries(
        {"interval": INT}, optional={"roleArn": one_of_texts("arn:aws:iam::123456789012:role/rds-monitoring")})),
    (("target", "instances", "autoMinorVersionUpgrade"), BOOL),
    (("target", "instances", "caCertificateIdentifier"), STRING),
    (("target", "instances", "publiclyAccessible"), BOOL),
    (("copy", "kmsKeyId"), STRING),
    (("copy", "sourceRegionKmsKeyId"), STRING),
    (("copy", "copyTags"), BOOL),
    (("copy", "deleteAfterRestore"), BOOL),
    (("existingTarget", "policy"), one_of_texts("Fail", "Replace")),
    (("existingTarget", "finalSnapshot"), BOOL),
    (("existingTarget", "keepPrevious"), DURATION),
    (("masterPassword",), st.one_of(
        st.fixed_dictionaries({"secretRef": secret_ref()}),
        st.fixed_dictionaries({"secretsManagerSecretId": STRING}),
        st.fixed_dictionaries({"manageInSecretsManager": BOOL}),
        wrong_type)),
    (("users",), users.map(lambda u: ("with-password", u))),
    (("verification",), verification.map(lambda v: ("with-password", v))),
    (("connectionSecret",), st.fixed_dictionaries({"name": one_of_texts("orders-db")})),
    (("timeout",), DURATION),
    (("deletionPolicy",), one_of_texts("Retain", "Delete")),
    (("notification",), st.one_of(
        st.fixed_dictionaries({}, optional={
            "snsTopicArn": one_of_texts("arn:aws:sns:us-east-1:123456789012:restores",
                                        "arn:aws:sns:us-east-1:123456789012:restores.fifo",
                                        "arn:aws:sns:us-east-1:123456789012:" + "t" * 257,
                                        "arn:aws:sqs:us-east-1:123456789012:restores"),
            "webhookSecretRef": st.one_of(st.fixed_dictionaries(
                {"name": st.one_of(st.sampled_from(HOSTILE_HOOKS), texts)},
                optional={"key": one_of_texts("url", "other")}), wrong_type),
            "webhookFormat": one_of_texts("JSON", "Slack"),
            "on": one_of_texts("Terminal", "EveryTransition")}),
        wrong_type)),
    (("source",), st.one_of(
        st.fixed_dictionaries({"region": st.just("us-east-1"), "latest": st.fixed_dictionaries(
            {"clusterIdentifier": one_of_texts("src")},
            optional={"snapshotType": one_of_texts("automated", "manual", "shared", "any"),
                      "namePattern": st.one_of(st.sampled_from(GLOBS), texts), "tags": tag_maps,
                      "maxAge": DURATION, "includeOperatorSnapshots": BOOL})}),
        st.fixed_dictionaries({"region": st.just("us-east-1"), "pointInTime": st.fixed_dictionaries(
            {"clusterIdentifier": one_of_texts("src")},
            optional={"restoreTime": one_of_texts("2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z"),
                      "useLatestRestorableTime": BOOL})}),
        wrong_type)),
]
mutation = st.sampled_from(range(len(FIELDS))).flatmap(
    lambda index: FIELDS[index][1].map(lambda value: (FIELDS[index][0], value)))
# Fields the CRD takes any string in (the operator alone sees what is in them): half the cases fill only these,
# so that as many hostile values reach the operator as the apiserver refuses.
FREE_FIELDS: list[tuple[tuple[str, ...], st.SearchStrategy]] = [
    (("target", "tags"), st.dictionaries(texts, texts, max_size=4)),
    (("target", "kmsKeyId"), st.one_of(st.sampled_from(GLOBS + SQL + NEAR_MISSES), PRINTABLE)),
    (("copy", "kmsKeyId"), PRINTABLE),
    (("target", "instances", "performanceInsights"), st.fixed_dictionaries({"kmsKeyId": PRINTABLE})),
    (("target", "instances", "count"), st.integers(0, 16)),
    (("target", "instances", "instanceClass"), st.from_regex(r"db\.[a-z0-9-]{1,20}(\.[a-z0-9-]{1,10}){0,2}",
                                                             fullmatch=True)),
    (("timeout",), st.sampled_from(["1s", "2s", "99999d", "99999d999999h9999999m99999999s"])),
    (("existingTarget",), st.fixed_dictionaries({"policy": st.just("Replace"), "finalSnapshot": st.booleans(),
                                                 "keepPrevious": st.sampled_from(["1s", "99999d999999h"])})),
    (("masterPassword",), st.fixed_dictionaries({"secretsManagerSecretId": PRINTABLE.filter(lambda s: " " not in s)})),
    (("users",), st.lists(st.fixed_dictionaries(
        {"name": st.from_regex(r"[a-z_][a-z0-9_]{0,40}", fullmatch=True),
         "passwordSecretRef": st.just({"name": "app-db", "key": "password"}),
         "databases": st.one_of(st.lists(st.one_of(st.sampled_from(SQL), texts), max_size=3), thousand)}),
        min_size=1, max_size=3).map(lambda u: ("with-password", u))),
    (("verification",), st.fixed_dictionaries(
        {"database": st.one_of(st.sampled_from(SQL), texts),
         "queries": st.lists(st.fixed_dictionaries({"sql": st.one_of(st.sampled_from(SQL), texts.filter(bool))}),
                             max_size=3)}).map(lambda v: ("with-password", v))),
    (("source",), st.fixed_dictionaries({"region": st.just("us-east-1"), "latest": st.fixed_dictionaries(
        {"clusterIdentifier": st.just("src"), "namePattern": st.one_of(st.sampled_from(GLOBS), texts),
         "tags": st.dictionaries(texts, texts, max_size=3)})})),
]
free_mutation = st.sampled_from(range(len(FREE_FIELDS))).flatmap(
    lambda index: FREE_FIELDS[index][1].map(lambda value: (FREE_FIELDS[index][0], value)))
restore_cases = st.one_of(st.lists(mutation, min_size=1, max_size=3), st.lists(free_mutation, min_size=1, max_size=3))

# The AuroraRestorePolicy's fields (api/policy.py).
GLOB = st.one_of(st.sampled_from(GLOBS), texts)
GLOB_LISTS = st.one_of(st.lists(GLOB, max_size=4), thousand, wrong_type)
POLICY_FIELDS: list[tuple[tuple[str, ...], st.SearchStrategy]] = [
    (("namespaces",), st.one_of(st.lists(GLOB, max_size=4).map(lambda globs: globs + ["*"]), GLOB_LISTS)),
    (("namespaceSelector",), st.one_of(
        st.fixed_dictionaries({}, optional={
            "matchLabels": tag_maps,
            "matchExpressions": st.lists(st.fixed_dictionaries(
                {"key": STRING, "operator": one_of_texts("In", "NotIn", "Exists", "DoesNotExist")},
                optional={"values": string_lists}), max_size=3)}),
        wrong_type)),
    (("targets",), st.one_of(st.lists(st.fixed_dictionaries(
        {}, optional={"region": GLOB, "clusterIdentifier": GLOB}), max_size=3), wrong_type)),
    (("sources",), st.one_of(st.lists(st.fixed_dictionaries(
        {}, optional={"accountId": GLOB, "region": GLOB, "clusterIdentifier": GLOB, "snapshotIdentifier": GLOB}),
        max_size=3), wrong_type)),
    (("roles",), GLOB_LISTS),
    (("secretsManagerSecrets",), GLOB_LISTS),
    (("replace",), st.one_of(st.fixed_dictionaries({}, optional={"allowed": BOOL,
                                                                  "onlyClustersCreatedByOperator": BOOL}), wrong_type)),
    (("instanceClasses",), GLOB_LISTS),
    (("maxInstances",), INT),
    (("allowFinalSnapshotSkip",), BOOL),
    (("snsTopics",), GLOB_LISTS),
    (("webhookHosts",), GLOB_LISTS),
]
policy_mutation = st.sampled_from(range(len(POLICY_FIELDS))).flatmap(
    lambda index: POLICY_FIELDS[index][1].map(lambda value: (POLICY_FIELDS[index][0], value)))
policy_cases = st.lists(policy_mutation, min_size=1, max_size=5)

# Explicit cases, always run: the brief's hostile values, one field each.
RESTORE_EXAMPLES = [
    # Each hostile webhook URL once (one of them on every transition), so the guard is met whatever is drawn.
    *([(("notification",), {"webhookSecretRef": {"name": hook}, **({"on": "EveryTransition"}
                                                                     if hook == "hook-metadata" else {})})]
      for hook in sorted(GUARD_REFUSALS)),
    [(("target", "instances", "count"), -1)],
    [(("target", "instances", "count"), 10**9)],
    [(("timeout",), "-5m")],
    [(("timeout",), "999999999h")],
    [(("timeout",), "99999999999999999999d")],
    [(("timeout",), "99999d999999h9999999m99999999s")],
    [(("source",), {"region": "us-east-1", "latest": {"clusterIdentifier": "src", "maxAge": "99999d"}})],
    [(("existingTarget",), {"policy": "Replace", "keepPrevious": "99999d999999h"})],
    [(("verification",), ("with-password", {"timeout": "99999d", "queries": [{"sql": "select 1"}]}))],
    [(("users",), ("with-password", [{"name": "x'; DROP TABLE users; --",
                                      "passwordSecretRef": {"name": "p", "key": "k"}}]))],
    [(("users",), ("with-password", [{"name": "app_user", "databases": ["x'; DROP TABLE users; --"] * 1000,
                                      "passwordSecretRef": {"name": "p", "key": "k"}}]))],
    [(("verification",), ("with-password", {"database": "x'; DROP TABLE users; --",
                                            "queries": [{"sql": "x'; DROP TABLE users; --"}]}))],
    [(("source", "snapshotIdentifier"), "x" * 10_000)],
    [(("source", "snapshotIdentifier"), "x'; DROP TABLE users; --")],
    [(("source", "snapshotIdentifier"), "\u00e9t\u00e9-\x00-\u202e")],
    [(("source", "snapshotIdentifier"), "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:a--b")],
    [(("source", "roleArn"), "arn:aws:iam::123456789012:role/aurora-restore-" + "\u00e9" * 10_000)],
    [(("source", "roleArn"), "arn:aws:iam::123456789012:role/aurora-restore-x"), (("source", "externalId"), "x\x00")],
    [(("target", "roleArn"), "arn:aws:iam::123456789012:role/aurora-restore-a\nb")],
    [(("target", "dbSubnetGroupName"), "\x00\x01\x1f\x7f")],
    [(("target", "dbSubnetGroupName"), "\u00e9" * 10_000)],
    [(("target", "vpcSecurityGroupIds"), [f"sg-{n:017x}" for n in range(1000)])],
    [(("target", "availabilityZones"), ["us-east-1a"] * 1000)],
    [(("target", "tags"), {f"k{n}": "v" for n in range(1000)})],
    [(("target", "tags"), {"k": "\x00" * 10_000})],
    [(("target", "kmsKeyId"), "*")],
    [(("source",), {"region": "us-east-1", "latest": {"clusterIdentifier": "src", "namePattern": "**"}})],
    [(("source",), {"region": "us-east-1", "latest": {"clusterIdentifier": "src", "namePattern": "[z-a]"}})],
    [(("target", "port"), 2**64)],
    [(("target", "instances", "promotionTier"), -(2**63))],
]
POLICY_EXAMPLES = [
    [(("namespaces",), ["*"]), (("targets",), [{"region": "*", "clusterIdentifier": "**"}]),
     (("sources",), [{"accountId": "?*", "region": "**", "clusterIdentifier": "*", "snapshotIdentifier": "?*"}]),
     (("roles",), ["*"]), (("secretsManagerSecrets",), ["**"]), (("instanceClasses",), ["?*"])],
    [(("namespaces",), ["*" * 10_000])],
    [(("namespaces",), ["?*"]), (("roles",), ["[" * 10_000])],
    [(("namespaces",), ["**"]), (("instanceClasses",), [f"db.x{n}.*" for n in range(1000)])],
    [(("namespaces",), ["*"]), (("maxInstances",), -1)],
    [(("namespaces",), ["*"]), (("maxInstances",), 10**9)],
    [(("namespaces",), ["*"]), (("maxInstances",), 2**64)],
    [(("namespaces",), ["*"]), (("targets",), [{"clusterIdentifier": "x'; DROP TABLE users; --"}])],
    [(("namespaces",), []), (("namespaceSelector",), {"matchExpressions": [
        {"key": "hostile", "operator": "In", "values": ["\x00", "*"] * 500}]})],
]


# --- building and submitting ----------------------------------------------------------------------------------


def set_path(document: dict, path: tuple[str, ...], value: Any) -> None:
    node = document
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


def restore_spec(mutations, uniq: str, index: int) -> dict:
    spec: dict[str, Any] = {"source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
                            "target": {"clusterIdentifier": f"h{uniq}-{index}"}}
    for path, value in mutations:
        if isinstance(value, tuple) and value[0] == "with-password":  # users and verification need a password
            spec["masterPassword"] = dict(PASSWORD)
            value = value[1]
        set_path(spec, path, value)
    source = spec["source"]
    for kind in ("latest", "pointInTime"):  # "src" stands for the test's source cluster
        inner = source.get(kind) if isinstance(source, dict) else None
        if isinstance(inner, dict) and inner.get("clusterIdentifier") == "src":
            inner["clusterIdentifier"] = f"src-{uniq}"
    spec["dryRun"] = True  # whatever else a case says: never a real restore
    return spec


def policy_spec(mutations) -> dict:
    spec: dict[str, Any] = {"namespaces": ["*"], "targets": [{}], "sources": [{}]}
    for path, value in mutations:
        set_path(spec, path, value)
    return spec


def draw(strategy: st.SearchStrategy, count: int, examples: list) -> list:
    """`count` cases drawn by hypothesis with the run's seed (and every explicit example), in order."""
    drawn: list = []

    @seed(SEED)
    @settings(max_examples=count, database=None, deadline=None, phases=(Phase.explicit, Phase.generate),
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(case):
        drawn.append(case)

    for case in reversed(examples):
        collect = example(case)(collect)
    collect()
    return drawn


def refusal_message(error: ApiException) -> str:
    try:
        return json.loads(error.body).get("message", "")
    except (TypeError, ValueError):
        return error.body or ""


def short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


# --- what AWS may be sent -------------------------------------------------------------------------------------

RDS_ARN = re.compile(r"arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:(cluster|db|cluster-snapshot):(?P<name>.+)")
NAME_PARAMETERS = ("DBClusterIdentifier", "DBInstanceIdentifier", "NewDBClusterIdentifier", "SourceDBClusterIdentifier")
SNAPSHOT_PARAMETERS = ("DBClusterSnapshotIdentifier", "SourceDBClusterSnapshotIdentifier", "SnapshotIdentifier")
STS_TEXT = re.compile("[\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]+")


def rds_would_refuse(parameter: str, value: str) -> bool:
    """Whether RDS refuses this identifier (rulebook rules `identifier`; a reference may be an ARN, and an
    automated snapshot's name is "rds:<name>", AWS Backup's "awsbackup:<name>", of up to 255 characters)."""
    if parameter == "TargetDBClusterSnapshotIdentifier":
        return not rulebook.is_valid_identifier(value)
    match = RDS_ARN.fullmatch(value)
    name = match["name"] if match else value
    if parameter in SNAPSHOT_PARAMETERS:
        for prefix in ("rds:", "awsbackup:"):
            name = name.removeprefix(prefix)
        return not rulebook.is_valid_identifier(name, rulebook.MAX_FINAL_SNAPSHOT_IDENTIFIER_LENGTH)
    return not rulebook.is_valid_identifier(name)


def refused_aws_parameters(calls: list[dict]) -> list[str]:
    bad = []
    for call in calls:
        parameters = call.get("parameters") or {}
        if call.get("service") == "rds":
            for parameter in (*NAME_PARAMETERS, *SNAPSHOT_PARAMETERS, "TargetDBClusterSnapshotIdentifier"):
                value = parameters.get(parameter)
                if value is not None and rds_would_refuse(parameter, value):
                    bad.append(f"{call['action']} {parameter}={short(value, 120)}")
        if call.get("service") == "sts":
            role, external = parameters.get("RoleArn"), parameters.get("ExternalId")
            if role is not None and not (20 <= len(role) <= 2048 and STS_TEXT.fullmatch(role)):
                bad.append(f"{call['action']} RoleArn={short(role, 120)}")
            if external is not None and not (2 <= len(external) <= 1224
                                             and re.fullmatch(r"[A-Za-z0-9_+=,.@:/-]*", external)):
                bad.append(f"{call['action']} ExternalId={short(external, 120)}")
    return bad


# --- the test -------------------------------------------------------------------------------------------------


def test_the_identifier_check_refuses_what_rds_refuses():
    assert not rds_would_refuse("DBClusterIdentifier", "orders-stage-1")
    assert not rds_would_refuse("DBClusterSnapshotIdentifier", "rds:orders-prod-2026-11-25-03-10")
    assert not rds_would_refuse("DBClusterSnapshotIdentifier",
                                "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:rds:orders-prod-2026-11-25")
    for value in ("a--b", "a-", "1a", "a_b", "a" * 64, "", "\u00e9", "x'; DROP TABLE users; --"):
        assert rds_would_refuse("DBClusterIdentifier", value), value
    assert rds_would_refuse("TargetDBClusterSnapshotIdentifier", "rds:x")
    assert rds_would_refuse("SnapshotIdentifier", "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:a--b")
    assert refused_aws_parameters([{"service": "sts", "action": "AssumeRole",
                                    "parameters": {"ExternalId": "a b"}}])


def test_hostile_specs_are_refused_or_fail_naming_the_field(api_client, aws, operator, namespace, uniq, aws_calls):
    print(f"hostile input: hypothesis seed {SEED}, {CASES} restores and {POLICY_CASES} policies (+ examples)")
    started = time.monotonic()
    rds = aws.client("rds", region_name="us-east-1")
    make_source(rds, f"src-{uniq}", [f"snap-{uniq}"])
    core = client.CoreV1Api(api_client)
    core.patch_namespace(namespace, {"metadata": {"labels": {"hostile": "yes", "team": "x"}}})
    for name, url in HOSTILE_HOOK_URLS.items():
        core.create_namespaced_secret(namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name),
                                                                 string_data={"url": url}))
    objects = client.CustomObjectsApi(api_client)
    problems: list[str] = []
    outcomes: dict[str, int] = {}

    policies = draw(policy_cases, POLICY_CASES, POLICY_EXAMPLES)
    created_policies = [f"hostile-base-{uniq}"]
    create_policy(api_client, created_policies[0], {**BASE_POLICY, "namespaces": [namespace]})
    try:
        for index, mutations in enumerate(policies):
            spec, name = policy_spec(mutations), f"a-hostile-{uniq}-{index}"
            try:
                create_policy(api_client, name, spec)
            except ApiException as error:
                if error.status not in (400, 422) or not refusal_message(error):
                    problems.append(f"policy {index}: answered {error.status} {short(refusal_message(error))}")
                outcomes["policy refused"] = outcomes.get("policy refused", 0) + 1
                continue
            created_policies.append(name)
            outcomes["policy accepted"] = outcomes.get("policy accepted", 0) + 1
            stored = objects.get_cluster_custom_object(GROUP, VERSION, "aurorarestorepolicies", name)["spec"]
            try:
                AuroraRestorePolicySpec.model_validate(stored)
            except Exception as error:  # the operator would ignore a policy the apiserver accepted
                problems.append(f"policy {index} accepted by the apiserver, refused by the model: "
                                f"{short(str(error))}; spec {short(spec)}")

        # NUL: JSON carries it and the apiserver stores it as it is; AWS takes no control character in a tag.
        nul = restore_spec([(("target", "tags"), {"nul": "a\x00b"})], uniq, 99999)
        create_restore(api_client, namespace, "nul", nul)
        assert get_restore(api_client, namespace, "nul")["spec"]["target"]["tags"] == {"nul": "a\x00b"}
        failure = wait_for_phase(api_client, namespace, "nul", ("Failed", "Planned"))["status"].get("failure") or {}
        assert failure.get("reason") == "InvalidSpec" and "spec.target.tags" in failure["message"], failure

        cases = draw(restore_cases, CASES, RESTORE_EXAMPLES)
        assert len(cases) >= CASES
        for batch_start in range(0, len(cases), BATCH_SIZE):
            batch = list(enumerate(cases))[batch_start:batch_start + BATCH_SIZE]
            waiting: dict[str, dict] = {}
            for index, mutations in batch:
                spec, name = restore_spec(mutations, uniq, index), f"h-{index}"
                body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
                        "metadata": {"name": name, "labels": {"hostile-batch": str(batch_start)}}, "spec": spec}
                try:
                    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
                except ApiException as error:
                    outcomes["refused at admission"] = outcomes.get("refused at admission", 0) + 1
                    if error.status not in (400, 422) or not refusal_message(error):
                        problems.append(f"case {index}: answered {error.status} "
                                        f"{short(refusal_message(error))}; spec {short(spec)}")
                    continue
                waiting[name] = spec
            deadline = time.monotonic() + SETTLE_SECONDS
            while waiting and time.monotonic() < deadline:
                time.sleep(1)
                for item in objects.list_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL, label_selector=f"hostile-batch={batch_start}")["items"]:
                    name, status = item["metadata"]["name"], item.get("status") or {}
                    if name not in waiting or status.get("phase") not in ("Planned", "Failed"):
                        continue
                    spec = waiting.pop(name)
                    if status["phase"] == "Planned":
                        outcomes["Planned"] = outcomes.get("Planned", 0) + 1
                        continue
                    failure = status.get("failure") or {}
                    key = f"Failed {failure.get('reason')}"
                    outcomes[key] = outcomes.get(key, 0) + 1
                    if "spec." not in (failure.get("message") or "") or not status.get("message"):
                        problems.append(f"{name}: Failed without naming a spec field: {short(failure)}; "
                                        f"spec {short(spec)}")
            for name, spec in waiting.items():
                status = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name).get("status")
                problems.append(f"{name}: neither Planned nor Failed after {SETTLE_SECONDS}s: "
                                f"{short((status or {}).get('phase'))} {short((status or {}).get('message'))}; "
                                f"spec {short(spec)}")
        guarded = check_guard_refusals(objects, namespace, problems)
        outcomes["webhook refused by the guard"] = guarded
    finally:
        for name in created_policies:
            delete_policy(api_client, name)

    print(f"hostile input: outcomes {dict(sorted(outcomes.items()))} in {time.monotonic() - started:.0f}s")
    assert operator.process.poll() is None, "the operator exited"
    log = operator.log_path.read_text(errors="replace")
    lines = [line for line in log.splitlines() if "Traceback" in line or "unexpected error" in line]
    assert not lines, f"the operator log has tracebacks or unexpected errors: {lines[:5]}\n{log[-5000:]}"
    assert not problems, f"{len(problems)} case(s) ended wrongly:\n" + "\n".join(problems[:25])
    calls = aws_calls.calls()
    looked_up = {call["action"] for call in calls if call.get("service") == "rds"}
    assert {"DescribeDBClusterSnapshots", "DescribeDBClusters"} <= looked_up, looked_up  # the check saw the run
    bad = refused_aws_parameters(calls)
    assert not bad, "identifiers AWS would refuse were sent:\n" + "\n".join(bad[:25])
    assert outcomes.get("Planned") and outcomes.get("refused at admission"), outcomes
    assert outcomes.get("webhook refused by the guard"), outcomes  # the guard saw hostile URLs, not only the policy


def hostile_hook(item: dict) -> str | None:
    """The hostile hook Secret a restore's webhook reads (its key `url`), or None."""
    notification = (item.get("spec") or {}).get("notification")
    ref = notification.get("webhookSecretRef") if isinstance(notification, dict) else None
    if not isinstance(ref, dict) or ref.get("name") not in GUARD_REFUSALS or ref.get("key", "url") != "url":
        return None
    return ref["name"]


def check_guard_refusals(objects, namespace: str, problems: list[str]) -> int:
    """Every restore a policy allowed (status.policy) whose webhook reads a hostile URL: each webhook entry ends
    Failed at its first attempt with the guard's refusal, never the URL. Waits for those entries to settle (a
    refusal is final, so within a turn or two); returns how many restores were checked."""
    def settled():
        items = [item for item in objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
                 if hostile_hook(item) and (item.get("status") or {}).get("policy")]
        pending = [item for item in items if any(entry.get("state") == "Pending" and entry["channel"] == "webhook"
                                                 for entry in item["status"].get("notifications") or [])]
        return None if pending else (items,)

    [items] = wait_until(settled, timeout=SETTLE_SECONDS, interval=2,
                         what="the hostile webhooks' notifications settled")
    for item in items:
        hook, name = hostile_hook(item), item["metadata"]["name"]
        entries = [entry for entry in item["status"].get("notifications") or [] if entry["channel"] == "webhook"]
        if not entries and item["status"].get("phase") == "Planned":
            problems.append(f"{name}: Planned without its webhook notification")
        for entry in entries:
            error = entry.get("error") or ""
            if (entry["state"], entry.get("attempts")) != ("Failed", 1) or "refused: " not in error or \
                    GUARD_REFUSALS[hook] not in error or HOSTILE_HOOK_URLS[hook] in error:
                problems.append(f"{name}: the webhook in {hook} was not refused by the guard: {short(entry)}")
    return len(items)
