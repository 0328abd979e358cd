"""spec.masking end to end on real PostgreSQL and MariaDB servers: every strategy read back, hashed keys that
still join, `where` honoured, no unmasked byte left in the tables' data files after the rewrite, the hash key in
no server log (the simulator logs every statement: log_statement=all, general_log), a bad rule failing before
any change with nothing exposed, and the masked-staging example applied as it is."""

from pathlib import Path

import psycopg
import pytest
import yaml
from databases import connect, create_secret, execute, read_secret, statement_log, user_exists
from kubernetes import client
from restores import create_restore, get_restore, make_source, wait_for_phase, wait_until
from secret_scan import SESSION

from aurora_restore.api.models import MaskingRule
from aurora_restore.db.masking import (
    FAKE_NAMES,
    JOURNAL_TABLE,
    MASKING_ENGINES,
    KeyWouldBeLogged,
    TableRef,
    hmac_pads,
    key_fingerprint,
    reference_email,
    reference_fake_name,
    reference_hash,
)

ENGINES = ["aurora-postgresql", "aurora-mysql"]
SOURCE_PASSWORD = "source-Pa55word-9"
MASTER_PASSWORD = "masked-Master-5"
DEVELOPERS_PASSWORD = "masked-Dev-6"
HASH_KEY = "e2e-masking-key-3f9c2a7b51d0"
EXAMPLE = Path(__file__).parents[2] / "examples" / "refresh-masked-staging.yaml"
# (id, name, email, contact, phone, note, country): every value but the country is personal data the masking
# removes; the bytes of PII_MARKERS must be gone from the data files.
CUSTOMERS = [
    (1, "Ada Lovelace", "ada.lovelace@pii-corp.example", "ada.home@pii-mail.example", "+44 20 7946 0101",
     "private note about Ada", "GB"),
    (2, "Grace Hopper", "grace.hopper@pii-corp.example", "grace.home@pii-mail.example", "+1 202 555 0102",
     "private note about Grace", "US"),
    (3, "Kiri Tane", "kiri.tane@pii-corp.example", "kiri.home@pii-mail.example", "+64 4 555 0103",
     "private note about Kiri", "NZ"),
    (4, "Alan Turing", "alan.turing@pii-corp.example", None, "+44 20 7946 0104", "private note about Alan", "GB"),
]
ORDERS = [(10, "ada.lovelace@pii-corp.example", 30), (11, "ada.lovelace@pii-corp.example", 12),
          (12, "kiri.tane@pii-corp.example", 7), (13, "grace.hopper@pii-corp.example", 99)]
AUDIT = [(1, "ada.lovelace@pii-corp.example logged in"), (2, "grace.hopper@pii-corp.example logged in")]
PII_MARKERS = [b"pii-corp.example", b"pii-mail.example", b"Lovelace", b"Hopper", b"7946", b"private note"]
RULES = [
    {"table": "customers", "column": "email", "strategy": "hash"},
    {"table": "orders", "column": "customer_email", "strategy": "hash"},
    {"table": "customers", "column": "name", "strategy": "fakeName"},
    {"table": "customers", "column": "contact", "strategy": "email"},
    # char_length('%') = 1 holds only if the driver reads the operator's `%%` back as `%` (LIKE would not tell).
    {"table": "customers", "column": "phone", "strategy": "nullify",
     "where": "country <> 'NZ' AND phone LIKE '+%' AND char_length('%') = 1"},
    {"table": "customers", "column": "note", "strategy": "constant", "value": "redacted"},
    {"table": "audit_log", "strategy": "truncate"},
]


def make_crm_source(rds, cluster: str, snapshot: str, engine: str, ca_file: str) -> None:
    """A source cluster whose database `crm` holds CUSTOMERS, ORDERS and AUDIT, and an available snapshot."""
    SESSION.remember_password(SOURCE_PASSWORD, "test_masking's source master password")
    rds.create_db_cluster(DBClusterIdentifier=cluster, Engine=engine, MasterUsername="admin_user",
                          MasterUserPassword=SOURCE_PASSWORD, DatabaseName="crm")
    described = wait_until(lambda: next((c for c in rds.describe_db_clusters(DBClusterIdentifier=cluster)[
        "DBClusters"] if c["Status"] == "available"), None), 120, what=f"cluster {cluster} available")
    with connect(engine, described["Endpoint"], described["Port"], "admin_user", SOURCE_PASSWORD, "crm",
                 ca_file) as conn:
        execute(conn, "CREATE TABLE customers (id integer PRIMARY KEY, name varchar(80), email varchar(120), "
                      "contact varchar(120), phone varchar(40), note text, country varchar(2))")
        execute(conn, "CREATE TABLE orders (id integer PRIMARY KEY, customer_email varchar(120), amount integer)")
        execute(conn, "CREATE TABLE audit_log (id integer PRIMARY KEY, detail text)")
        for row in CUSTOMERS:
            execute(conn, "INSERT INTO customers VALUES (%s, %s, %s, %s, %s, %s, %s)", row)
        for row in ORDERS:
            execute(conn, "INSERT INTO orders VALUES (%s, %s, %s)", row)
        for row in AUDIT:
            execute(conn, "INSERT INTO audit_log VALUES (%s, %s)", row)
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=snapshot, DBClusterIdentifier=cluster)
    wait_until(lambda: rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot)[
        "DBClusterSnapshots"][0]["Status"] == "available", 120, what=f"snapshot {snapshot} available")


def masked_spec(uniq: str, rules=RULES, **changes) -> dict:
    return {
        "source": {"region": "us-east-1", "snapshotIdentifier": f"snap-{uniq}"},
        "target": {"clusterIdentifier": f"tgt-{uniq}", "instances": {"count": 1}},
        "masterPassword": {"secretRef": {"name": "secrets", "key": "master"}},
        "masking": {"database": "crm", "hashKeySecretRef": {"name": "secrets", "key": "hash-key"}, "rules": rules},
        "users": [{"name": "developers", "access": "readOnly", "databases": ["crm"],
                   "passwordSecretRef": {"name": "secrets", "key": "developers"}}],
        "connectionSecret": {"name": f"db-{uniq}"},
        **changes,
    }


def create_secrets(api_client, namespace: str) -> None:
    create_secret(api_client, namespace, "secrets", {"master": MASTER_PASSWORD, "developers": DEVELOPERS_PASSWORD,
                                                     "hash-key": HASH_KEY})


def cluster_of(rds, identifier: str) -> dict:
    return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]


def open_crm(engine: str, cluster: dict, password: str, ca_file: str):
    return connect(engine, cluster["Endpoint"], cluster["Port"], "admin_user", password, "crm", ca_file)


def server_of(simulator, identifier: str) -> dict:
    return next(d for d in simulator.databases()["databases"] if d["cluster"] == identifier)


def data_file_bytes(engine: str, conn, simulator, identifier: str, table: str) -> bytes:
    """The table's data file(s) as the local server wrote them to disk (PostgreSQL: every segment of the heap and
    of its TOAST table; MariaDB: the table's .ibd, its dirty pages flushed first by FLUSH TABLES ... FOR EXPORT)."""
    data = Path(server_of(simulator, identifier)["directory"]) / "data"
    if engine == "aurora-postgresql":
        checkpoint(simulator, identifier)
        paths = [row[0] for row in execute(
            conn, "SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.oid = %s::regclass "
                  "UNION ALL SELECT pg_relation_filepath(c.reltoastrelid) FROM pg_class c "
                  "WHERE c.oid = %s::regclass AND c.reltoastrelid <> 0", (table, table))]
        files = [file for path in paths for file in sorted(data.glob(path + "*")) if file.name.split(".")[0]
                 == Path(path).name]
    else:
        execute(conn, f"FLUSH TABLES {table} FOR EXPORT")
        execute(conn, "UNLOCK TABLES")
        files = [data / "crm" / f"{table}.ibd"]
    assert files and all(file.exists() for file in files), files
    return b"".join(file.read_bytes() for file in files)


def storage_ids(engine: str, conn) -> dict[str, int]:
    """Each crm table's storage: PostgreSQL's relfilenode, InnoDB's tablespace id (MariaDB's INNODB_SYS_TABLES).
    A rewrite (VACUUM FULL, ALTER TABLE ... FORCE) writes the table to a new one and removes the old file."""
    if engine == "aurora-postgresql":
        rows = execute(conn, "SELECT relname, pg_relation_filenode(oid) FROM pg_class WHERE relnamespace = "
                             "'public'::regnamespace AND relkind = 'r' AND relname IN ('customers', 'orders', "
                             "'audit_log')")
    else:
        rows = execute(conn, "SELECT SUBSTRING_INDEX(name, '/', -1), space FROM information_schema.INNODB_SYS_TABLES "
                             "WHERE name IN ('crm/customers', 'crm/orders', 'crm/audit_log')")
    return {name: int(space) for name, space in rows}


def checkpoint(simulator, identifier: str) -> None:
    """CHECKPOINT on the local server, as its bootstrap superuser over the Unix socket (the test's instrument: the
    operator never has it), so every page changed in shared buffers is on disk before the data files are read."""
    server = server_of(simulator, identifier)
    with psycopg.connect(host=server["socket_directory"], port=server["port"], user="rdsadmin", dbname="postgres",
                         autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def heap_file(conn, simulator, identifier: str, table: str) -> bytes:
    """A PostgreSQL table's main heap file (every segment), as written to disk."""
    checkpoint(simulator, identifier)
    data = Path(server_of(simulator, identifier)["directory"]) / "data"
    path = execute(conn, "SELECT pg_relation_filepath(%s::regclass)", (table,))[0][0]
    segments = [data / path, *sorted(data.glob(path + ".[0-9]*"))]
    return b"".join(segment.read_bytes() for segment in segments)


def tuples_in_heap(heap: bytes, page_size: int = 8192) -> int:
    """The row versions in a heap file: each page's line pointers (after the 24-byte page header, up to pd_lower
    at offset 12) flagged LP_NORMAL (1), live or dead alike (PostgreSQL's bufpage.h and itemid.h)."""
    count = 0
    for start in range(0, len(heap), page_size):
        page = heap[start:start + page_size]
        lower = int.from_bytes(page[12:14], "little")
        for offset in range(24, lower, 4):
            item = int.from_bytes(page[offset:offset + 4], "little")
            count += (item >> 15) & 3 == 1
    return count


@pytest.mark.parametrize("engine", ENGINES)
def test_every_strategy_masks_and_nothing_unmasked_remains(api_client, aws, operator, namespace, uniq, db_ca_file,
                                                           simulator, engine):
    rds = aws.client("rds", region_name="us-east-1")
    make_crm_source(rds, f"src-{uniq}", f"snap-{uniq}", engine, db_ca_file)
    create_secrets(api_client, namespace)
    create_restore(api_client, namespace, "masked", masked_spec(uniq))
    status = wait_for_phase(api_client, namespace, "masked", {"Succeeded", "Failed"}, timeout=300)["status"]
    assert status["phase"] == "Succeeded", status

    key = HASH_KEY.encode()
    cluster = cluster_of(rds, f"tgt-{uniq}")
    with open_crm(engine, cluster, MASTER_PASSWORD, db_ca_file) as conn:
        customers = execute(conn, "SELECT id, name, email, contact, phone, note, country FROM customers ORDER BY id")
        assert len(customers) == len(CUSTOMERS)  # row counts unchanged
        for (id_, name, email, contact, phone, note, country), original in zip(customers, CUSTOMERS, strict=True):
            assert id_ == original[0] and country == original[6]
            assert email == reference_hash(key, original[2])  # the same HMAC-SHA256 on both engines
            assert name == reference_fake_name(key, original[1]) and name in FAKE_NAMES
            assert contact == (reference_email(key, original[3]) if original[3] is not None else None)
            assert phone == (original[4] if country == "NZ" else None)  # where: only rows outside NZ
            assert note == "redacted"
        orders = execute(conn, "SELECT id, customer_email, amount FROM orders ORDER BY id")
        assert [(i, amount) for i, _, amount in orders] == [(i, amount) for i, _, amount in ORDERS]
        joined = execute(conn, "SELECT o.id, c.id FROM orders o JOIN customers c ON c.email = o.customer_email "
                               "ORDER BY o.id")
        assert joined == [(10, 1), (11, 1), (12, 3), (13, 2)]  # hashed keys still join
        assert execute(conn, "SELECT COUNT(*) FROM audit_log") == [(0,)]
        tables = execute(conn, "SELECT table_name FROM information_schema.tables WHERE table_name = %s",
                         (JOURNAL_TABLE,))
        assert tables == []  # the journal is dropped once status recorded completion

        # The rewrite left no old row version: the original bytes are in no data file of the masked tables.
        for table in ("customers", "orders", "audit_log"):
            content = data_file_bytes(engine, conn, simulator, f"tgt-{uniq}", table)
            found = [marker for marker in PII_MARKERS if marker in content]
            assert found == [], (table, found)
        assert b"redacted" in data_file_bytes(engine, conn, simulator, f"tgt-{uniq}", "customers")
        if engine == "aurora-postgresql":
            # 4 rows updated by 5 rules left 19 dead versions beside them; after VACUUM FULL the heap's pages hold
            # exactly the 4 live ones (n_dead_tup is a statistic VACUUM FULL does not reset, so the pages are read).
            heap = heap_file(conn, simulator, f"tgt-{uniq}", "customers")
            assert tuples_in_heap(heap) == len(CUSTOMERS)

    masking = status["masking"]
    assert masking["tablesTotal"] == 3 and masking["tablesDone"] == 3 and masking["completedAt"]
    by_table = {entry["table"]: entry for entry in masking["tables"]}
    schema = "public" if engine == "aurora-postgresql" else "crm"
    assert by_table[f"{schema}.customers"]["rules"] == 5 and by_table[f"{schema}.customers"]["rewritten"]
    # 4 rows each for hash, fakeName, email, constant; 3 outside NZ for nullify
    assert by_table[f"{schema}.customers"]["rowsChanged"] == 4 * 4 + 3
    assert by_table[f"{schema}.orders"]["rowsChanged"] == 4 and by_table[f"{schema}.audit_log"]["rowsChanged"] == 2
    assert masking["rowsChanged"] == 19 + 4 + 2
    assert masking["keyFingerprint"] == key_fingerprint(key)  # pinned, and not the key
    assert [user["name"] for user in status["users"]] == ["developers"]

    # The key, or its pads (from which it follows), is in no statement the server logged, though it logged them all.
    log = statement_log(simulator, f"tgt-{uniq}")
    assert "customers" in log and "UPDATE" in log  # the masking statements are there
    inner, outer = hmac_pads(key)
    for secret in (HASH_KEY, inner.hex(), outer.hex(), inner.hex().upper(), outer.hex().upper()):
        assert secret not in log
    assert HASH_KEY not in str(get_restore(api_client, namespace, "masked"))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_rule_naming_a_missing_column_fails_before_any_change(api_client, aws, operator, namespace, uniq,
                                                                db_ca_file, engine):
    rds = aws.client("rds", region_name="us-east-1")
    make_crm_source(rds, f"src-{uniq}", f"snap-{uniq}", engine, db_ca_file)
    create_secrets(api_client, namespace)
    rules = [*RULES, {"table": "customers", "column": "passport", "strategy": "nullify"},
             {"table": "invoices", "column": "iban", "strategy": "hash"},
             {"table": "orders", "column": "amount", "strategy": "nullify", "where": "no_such_column > '1%'"}]
    create_restore(api_client, namespace, "bad-rule", masked_spec(uniq, rules=rules))
    status = wait_for_phase(api_client, namespace, "bad-rule", {"Succeeded", "Failed"}, timeout=300)["status"]
    assert status["phase"] == "Failed", status
    assert status["failure"]["reason"] == "MaskingRuleInvalid" and status["failure"]["phase"] == "Masking"
    message = status["failure"]["message"]
    assert "spec.masking.rules[7]" in message and "'passport'" in message  # every problem, each named
    assert "spec.masking.rules[8]" in message and "invoices does not exist" in message
    assert "spec.masking.rules[9]: the database refuses its where" in message  # planned (EXPLAIN), not run

    # No row changed: the restored cluster (kept for inspection) holds the source's data as it was.
    with open_crm(engine, cluster_of(rds, f"tgt-{uniq}"), MASTER_PASSWORD, db_ca_file) as conn:
        customers = execute(conn, "SELECT id, name, email, contact, phone, note, country FROM customers ORDER BY id")
        assert customers == CUSTOMERS
        assert execute(conn, "SELECT id, customer_email, amount FROM orders ORDER BY id") == ORDERS
        assert execute(conn, "SELECT id, detail FROM audit_log ORDER BY id") == AUDIT
        # Nothing exposed: no database user was made.
        assert not user_exists(engine, conn, "developers")
    assert status.get("users") in (None, [])
    with pytest.raises(client.exceptions.ApiException) as missing:
        client.CoreV1Api(api_client).read_namespaced_secret(f"db-{uniq}", namespace)
    assert missing.value.status == 404


def test_masked_staging_example_replaces_only_after_masking(api_client, aws, operator, namespace, db_ca_file,
                                                            simulator):
    """examples/refresh-masked-staging.yaml as it is (namespace aside): a failing masking rule first leaves the
    existing staging cluster untouched and nothing exposed; the example's own rules then swap in masked data."""
    documents = list(yaml.safe_load_all(EXAMPLE.read_text()))
    secret, restore = documents
    rds = aws.client("rds", region_name="us-east-1")
    make_crm_source(rds, "crm-prod", restore["spec"]["source"]["snapshotIdentifier"], "aurora-postgresql",
                    db_ca_file)
    staging = restore["spec"]["target"]["clusterIdentifier"]
    make_source(rds, staging, [], tags={"dbrestore.io/replaceable": "true"})  # the existing staging cluster
    before = cluster_of(rds, staging)
    SESSION.remember_password(secret["stringData"]["masking-key"], "the example's hash key")
    create_secret(api_client, namespace, secret["metadata"]["name"], secret["stringData"])

    # First with a rule naming a column that does not exist: it fails before swapping or exposing anything.
    broken = {**restore["spec"], "masking": {**restore["spec"]["masking"], "rules": [
        *restore["spec"]["masking"]["rules"], {"table": "customers", "column": "ssn", "strategy": "nullify"}]}}
    create_restore(api_client, namespace, "broken-refresh", broken)
    status = wait_for_phase(api_client, namespace, "broken-refresh", {"Succeeded", "Failed"}, timeout=300)["status"]
    assert status["phase"] == "Failed" and status["failure"]["reason"] == "MaskingRuleInvalid", status
    after = cluster_of(rds, staging)
    assert (after["DbClusterResourceId"], after["Endpoint"], after["Status"]) == (
        before["DbClusterResourceId"], before["Endpoint"], before["Status"])
    with pytest.raises(client.exceptions.ApiException):
        client.CoreV1Api(api_client).read_namespaced_secret(restore["spec"]["connectionSecret"]["name"], namespace)

    restore["metadata"]["namespace"] = namespace
    objects = client.CustomObjectsApi(api_client)
    objects.create_namespaced_custom_object("dbrestore.io", "v1alpha1", namespace, "aurorarestores", restore)
    name = restore["metadata"]["name"]
    status = wait_for_phase(api_client, namespace, name, {"Succeeded", "Failed"}, timeout=400)["status"]
    assert status["phase"] == "Succeeded", status
    swapped = cluster_of(rds, staging)
    assert swapped["DbClusterResourceId"] != before["DbClusterResourceId"]  # the masked cluster took the name
    key = secret["stringData"]["masking-key"].encode()
    connection = read_secret(api_client, namespace, restore["spec"]["connectionSecret"]["name"])
    with connect("aurora-postgresql", swapped["Endpoint"], swapped["Port"], "developers",
                 secret["stringData"]["developers"], "crm", db_ca_file) as conn:
        rows = execute(conn, "SELECT id, email, name, phone FROM customers ORDER BY id")
        assert [(i, email) for i, email, _, _ in rows] == [(c[0], reference_hash(key, c[2])) for c in CUSTOMERS]
        assert all(name in FAKE_NAMES for _, _, name, _ in rows)
        assert [phone for *_, phone in rows] == [None, None, CUSTOMERS[2][4], None]
        assert execute(conn, "SELECT COUNT(*) FROM audit_log") == [(0,)]
    assert connection["username"] == "admin_user"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_table_committed_before_a_kill_is_not_hashed_twice(api_client, aws, operator, namespace, uniq,
                                                              db_ca_file, engine):
    """The operator killed between a table's commit and the status write: the table's masking and its journal row
    are in the database, status does not know. Played here by doing what that turn did, with the operator's own
    SQL, while the restore waits in Masking for the hash key's Secret; the resumed restore must take the journal's
    word and leave the table as it is."""
    rds = aws.client("rds", region_name="us-east-1")
    make_crm_source(rds, f"src-{uniq}", f"snap-{uniq}", engine, db_ca_file)
    create_secrets(api_client, namespace)
    spec = masked_spec(uniq)
    spec["masking"]["hashKeySecretRef"] = {"name": "late-key", "key": "hash-key"}
    create_restore(api_client, namespace, "resumed", spec)
    wait_until(lambda: (get_restore(api_client, namespace, "resumed").get("status") or {}).get("phase") == "Masking"
               and "late-key" in get_restore(api_client, namespace, "resumed")["status"].get("message", ""),
               timeout=180, what="Masking waiting for the key's Secret")
    uid = get_restore(api_client, namespace, "resumed")["metadata"]["uid"]

    engine_sql = MASKING_ENGINES[engine]
    ref = TableRef("public" if engine == "aurora-postgresql" else "crm", "customers")
    customers_rules = [MaskingRule(**rule) for rule in RULES if rule["table"] == "customers"]
    with open_crm(engine, cluster_of(rds, f"tgt-{uniq}"), MASTER_PASSWORD, db_ca_file) as conn:
        before = storage_ids(engine, conn)
        assert sorted(before) == ["audit_log", "customers", "orders"]
        engine_sql.ensure_journal(conn)
        engine_sql.load_key(conn, *hmac_pads(HASH_KEY.encode()))
        assert engine_sql.mask_table(conn, uid, ref, customers_rules) == 19
    create_secret(api_client, namespace, "late-key", {"hash-key": HASH_KEY})

    status = wait_for_phase(api_client, namespace, "resumed", {"Succeeded", "Failed"}, timeout=300)["status"]
    assert status["phase"] == "Succeeded", status
    with open_crm(engine, cluster_of(rds, f"tgt-{uniq}"), MASTER_PASSWORD, db_ca_file) as conn:
        emails = [email for (email,) in execute(conn, "SELECT email FROM customers ORDER BY id")]
        joined = execute(conn, "SELECT COUNT(*) FROM orders o JOIN customers c ON c.email = o.customer_email")
        after = storage_ids(engine, conn)
    # Every masked table was rewritten, the one the journal vouched for too: its old pages are not its pages now.
    assert sorted(after) == sorted(before) and all(after[table] != before[table] for table in before), (before, after)
    assert emails == [reference_hash(HASH_KEY.encode(), row[2]) for row in CUSTOMERS]  # hashed once, not twice
    assert joined == [(len(ORDERS),)]
    by_table = {entry["table"]: entry for entry in status["masking"]["tables"]}
    assert by_table[str(ref)]["rowsChanged"] == 19 and status["masking"]["tablesDone"] == 3


@pytest.mark.parametrize("engine", ENGINES)
def test_a_statement_the_database_refuses_rolls_back_its_table(api_client, aws, operator, namespace, uniq,
                                                                db_ca_file, simulator, engine):
    """The second table's rules: a hash with a `where`, then a constant its integer column cannot take. That
    table's transaction is rolled back as a whole (its first rule too), the table before it stays masked, the
    restore fails with nothing exposed, and the failed statement's log entry holds no key."""
    rds = aws.client("rds", region_name="us-east-1")
    make_crm_source(rds, f"src-{uniq}", f"snap-{uniq}", engine, db_ca_file)
    create_secrets(api_client, namespace)
    rules = [{"table": "customers", "column": "note", "strategy": "constant", "value": "redacted"},
             {"table": "orders", "column": "customer_email", "strategy": "hash", "where": "amount > 10"},
             {"table": "orders", "column": "amount", "strategy": "constant", "value": "a lot"}]
    create_restore(api_client, namespace, "refused", masked_spec(uniq, rules=rules))
    status = wait_for_phase(api_client, namespace, "refused", {"Succeeded", "Failed"}, timeout=300)["status"]
    assert status["phase"] == "Failed", status
    assert status["failure"]["reason"] == "MaskingFailed" and "orders" in status["failure"]["message"]
    assert [entry["rewritten"] for entry in status["masking"]["tables"]] == [True, False]
    with open_crm(engine, cluster_of(rds, f"tgt-{uniq}"), MASTER_PASSWORD, db_ca_file) as conn:
        assert [note for (note,) in execute(conn, "SELECT note FROM customers")] == ["redacted"] * len(CUSTOMERS)
        assert execute(conn, "SELECT id, customer_email, amount FROM orders ORDER BY id") == ORDERS
        assert not user_exists(engine, conn, "developers")
    with pytest.raises(client.exceptions.ApiException):
        client.CoreV1Api(api_client).read_namespaced_secret(f"db-{uniq}", namespace)
    # The failing statement ran with the key loaded: the server logged it (PostgreSQL also its error), not the key.
    log = statement_log(simulator, f"tgt-{uniq}")
    assert "a lot" in log and ("ERROR" in log if engine == "aurora-postgresql" else True)
    inner, outer = hmac_pads(HASH_KEY.encode())
    assert [secret for secret in (HASH_KEY, inner.hex(), outer.hex(), inner.hex().upper(), outer.hex().upper())
            if secret in log] == []


def test_the_mysql_key_is_not_sent_where_the_general_log_would_record_it(aws, uniq, db_ca_file, simulator):
    """Aurora MySQL's master user has no SUPER, so it may not set sql_log_off; the simulator's master may. A user
    without SUPER plays that master here, on a server whose general log is on: the pads are not sent (fail closed),
    and the log holds none of them. The simulator's master, which may set sql_log_off, loads them unlogged."""
    rds = aws.client("rds", region_name="us-east-1")
    SESSION.remember_password(SOURCE_PASSWORD, "test_masking's source master password")
    # The password of the user without SUPER is not one for the session's secret scan: the test itself creates the
    # user with it on a server whose general log is on (the operator never sees it), so that log holds it.
    rds.create_db_cluster(DBClusterIdentifier=f"logged-{uniq}", Engine="aurora-mysql", MasterUsername="admin_user",
                          MasterUserPassword=SOURCE_PASSWORD, DatabaseName="crm")
    cluster = wait_until(lambda: next((c for c in rds.describe_db_clusters(DBClusterIdentifier=f"logged-{uniq}")[
        "DBClusters"] if c["Status"] == "available"), None), 120, what="cluster available")
    inner, outer = hmac_pads(HASH_KEY.encode())
    mysql = MASKING_ENGINES["aurora-mysql"]
    with open_crm("aurora-mysql", cluster, SOURCE_PASSWORD, db_ca_file) as conn:
        execute(conn, "CREATE USER 'plain'@'%%' IDENTIFIED BY 'Plain-pa55word-7'")
        execute(conn, "GRANT ALL PRIVILEGES ON crm.* TO 'plain'@'%%'")  # the helper passes parameters: %% is %
    with connect("aurora-mysql", cluster["Endpoint"], cluster["Port"], "plain", "Plain-pa55word-7", "crm",
                 db_ca_file) as conn:
        with pytest.raises(KeyWouldBeLogged, match="general_log is on"):
            mysql.load_key(conn, inner, outer)
        assert execute(conn, "SELECT @aurora_restore_inner_pad IS NULL") == [(1,)]
    with open_crm("aurora-mysql", cluster, SOURCE_PASSWORD, db_ca_file) as conn:
        mysql.load_key(conn, inner, outer)
        assert execute(conn, "SELECT HEX(@aurora_restore_inner_pad)") == [(inner.hex().upper(),)]
        # The session's binary log format was made ROW before the pads were set (MariaDB's default is MIXED).
        assert execute(conn, "SELECT @@SESSION.binlog_format") == [("ROW",)]
    log = statement_log(simulator, f"logged-{uniq}")
    assert "general_log" in log  # the settings were read, logged; the pads were not
    assert [secret for secret in (HASH_KEY, inner.hex(), outer.hex(), inner.hex().upper(), outer.hex().upper())
            if secret in log] == []
