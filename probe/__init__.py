"""The replication probe: heartbeat rows written to the writer database and looked for on the cross-region
replica, reported through CloudWatch in both regions so that a drill can read the measurement from the region
users go to even while the other region is down.

One process per region (`python -m probe`): in the active region it writes (`writer` mode), in the standby
region it reads its local replica (`reader` mode). This package imports only the standard library, psycopg
and boto3: its image is built from this directory alone. The drill tool imports the names below.
"""

TABLE = "replication_heartbeat"

WRITER_DIMENSION = "WriterRegion"
ENVIRONMENT_DIMENSION = "Environment"

# writer: epoch seconds (written_at) of its last acknowledged heartbeat, Unit None
LAST_ACKNOWLEDGED_WRITE = "LastAcknowledgedWrite"
# writer: seq of that heartbeat, Unit Count
LAST_ACKNOWLEDGED_SEQ = "LastAcknowledgedSeq"
# reader: epoch seconds (written_at) of the newest heartbeat of WriterRegion on its local database, Unit None
NEWEST_REPLICATED_WRITE = "NewestReplicatedWrite"
# reader: its seq, Unit Count
NEWEST_REPLICATED_SEQ = "NewestReplicatedSeq"
# reader: its clock now - that written_at, >= 0, Unit Seconds
REPLICATION_AGE = "ReplicationAge"

METRICS = {
    "last_acknowledged_write": LAST_ACKNOWLEDGED_WRITE,
    "last_acknowledged_seq": LAST_ACKNOWLEDGED_SEQ,
    "newest_replicated_write": NEWEST_REPLICATED_WRITE,
    "newest_replicated_seq": NEWEST_REPLICATED_SEQ,
    "replication_age": REPLICATION_AGE,
}
