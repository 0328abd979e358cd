"""Demo data for the local environment: source clusters with nightly snapshots, and KMS keys to copy with.

What `dev seed` creates (idempotently), in the AWS simulator:
  us-east-1  KMS key alias/prod-rds; cluster orders-prod (aurora-postgresql, encrypted) with snapshots
             nightly-2026-11-23, nightly-2026-11-24, nightly-2026-11-25 and a newer manual adhoc-before-migration
             that a `namePattern: "nightly-*"` must not pick
  us-west-2  KMS key alias/stage-rds (for the cross-region copy of examples/orders-stage.yaml)
"""

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3

from .simulator import SimulatorClient

SOURCE_REGION = "us-east-1"
TARGET_REGION = "us-west-2"
SOURCE_CLUSTER = "orders-prod"
NIGHTLY_SNAPSHOTS = ["nightly-2026-11-23", "nightly-2026-11-24", "nightly-2026-11-25"]
NEWER_NON_MATCHING_SNAPSHOT = "adhoc-before-migration"


def ensure_kms_alias(session: boto3.session.Session, region: str, alias: str) -> str:
    """The key id behind `alias`, creating key and alias when missing."""
    kms = session.client("kms", region_name=region)
    for existing in kms.list_aliases()["Aliases"]:
        if existing["AliasName"] == alias and existing.get("TargetKeyId"):
            return existing["TargetKeyId"]
    key_id = kms.create_key(Description=f"demo key {alias}")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def wait_for(describe, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if describe() == "available":
            return
        time.sleep(0.5)
    raise TimeoutError(f"{what} not available after {timeout}s")


DEMO_MASTER_USER = "orders_admin"
DEMO_MASTER_PASSWORD = "demo-only-password-1"
DEMO_ROWS = [(1, "espresso"), (2, "flat white"), (3, "cortado")]


def fill_orders_database(cluster: dict, ca_bundle: Path) -> None:
    """Table `orders` with three rows in the source cluster's real database (the snapshots then hold them)."""
    import psycopg

    with psycopg.connect(host=cluster["Endpoint"], port=cluster["Port"], user=DEMO_MASTER_USER,
                         password=DEMO_MASTER_PASSWORD, dbname="orders", sslmode="verify-full",
                         sslrootcert=str(ca_bundle), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id integer PRIMARY KEY, item text)")
        for row in DEMO_ROWS:
            conn.execute("INSERT INTO orders (id, item) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING", row)


def seed(session: boto3.session.Session, simulator_url: str, ca_bundle: Path | None = None, progress=print) -> None:
    """Create the demo source cluster, its snapshots and the KMS keys; skip what already exists.

    With database servers behind the simulator (`ca_bundle` given), the cluster's database `orders` gets a
    table of three orders before the snapshots are taken, so restores carry real data.
    """
    ensure_kms_alias(session, TARGET_REGION, "alias/stage-rds")
    key_id = ensure_kms_alias(session, SOURCE_REGION, "alias/prod-rds")
    rds = session.client("rds", region_name=SOURCE_REGION)

    existing_clusters = {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]}
    if SOURCE_CLUSTER not in existing_clusters:
        progress(f"creating cluster {SOURCE_CLUSTER} in {SOURCE_REGION}")
        rds.create_db_cluster(
            DBClusterIdentifier=SOURCE_CLUSTER,
            Engine="aurora-postgresql",
            EngineVersion="15.4",
            MasterUsername=DEMO_MASTER_USER,
            MasterUserPassword=DEMO_MASTER_PASSWORD,
            DatabaseName="orders",
            StorageEncrypted=True,
            KmsKeyId=key_id,
            Tags=[{"Key": "env", "Value": "prod"}],
        )
    wait_for(
        lambda: rds.describe_db_clusters(DBClusterIdentifier=SOURCE_CLUSTER)["DBClusters"][0]["Status"],
        f"cluster {SOURCE_CLUSTER}",
    )
    if ca_bundle is not None:
        fill_orders_database(rds.describe_db_clusters(DBClusterIdentifier=SOURCE_CLUSTER)["DBClusters"][0], ca_bundle)

    existing = {
        s["DBClusterSnapshotIdentifier"]
        for s in rds.describe_db_cluster_snapshots(DBClusterIdentifier=SOURCE_CLUSTER)["DBClusterSnapshots"]
    }
    now = datetime.now(timezone.utc).replace(microsecond=0)
    ages = {name: timedelta(days=len(NIGHTLY_SNAPSHOTS) - i) for i, name in enumerate(NIGHTLY_SNAPSHOTS)}
    ages[NEWER_NON_MATCHING_SNAPSHOT] = timedelta(hours=1)  # newest of all, but not a nightly
    for name, age in ages.items():
        if name not in existing:
            progress(f"creating snapshot {name}")
            rds.create_db_cluster_snapshot(
                DBClusterSnapshotIdentifier=name,
                DBClusterIdentifier=SOURCE_CLUSTER,
                Tags=[{"Key": "schedule", "Value": "nightly" if name.startswith("nightly-") else "adhoc"}],
            )
    for name, age in ages.items():
        wait_for(
            lambda: rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"][0][
                "Status"
            ],
            f"snapshot {name}",
        )
        SimulatorClient(simulator_url).set_snapshot_create_time(name, now - age, region=SOURCE_REGION)
    progress(f"seeded {SOURCE_CLUSTER} with {len(ages)} snapshots in {SOURCE_REGION}")
