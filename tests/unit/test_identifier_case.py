"""RDS identifiers are case-insensitive and stored in lower case; the spec allows upper-case letters.

The steps compare identifiers AWS returns with the ones in the spec, so a mixed-case identifier must still work.
"""

from aurora_restore.api.phase import Phase


def test_a_mixed_case_target_identifier_restores(restore, cloud):
    status = restore({"target": {"clusterIdentifier": "Staging-Blue"}}).run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert len(cloud.calls_to("create_instance")) == 2


def test_a_mixed_case_latest_cluster_identifier_finds_its_snapshots(restore, source):
    source.add_snapshot("nightly-1", "reporting")
    run = restore({"source": {"snapshotIdentifier": None, "latest": {"clusterIdentifier": "Reporting"}}})
    status = run.run()
    assert status.phase == Phase.SUCCEEDED, status.message
    assert status.snapshot.identifier == "nightly-1"
