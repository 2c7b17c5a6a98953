"""Scale-out on Ray: a plan's large fragments read as parallel splits by Ray tasks (``[execution] engine = "ray"``).

The coordinator (the process serving Flight SQL / REST, a Ray driver) plans as usual; ``decide`` picks the
fragments to distribute (queries estimated at ``min_rows``/``min_bytes`` or more) and ``splits`` cuts each into
picklable ``SplitTask`` descriptors (source config, SQL in the source's dialect with the split predicate, output
Arrow schema); never a DataFusion plan or a connection. Workers build their own connectors (``worker``), scan
their split and return Arrow tables through Ray's object store; ``DistributedFeed`` hands them to the residual
plan exactly as a local fragment feed does. ``executors`` has the Ray executor and a local one with the same
interface (threads; tests and small deployments). An inner equi-join of two large distributed fragments runs
as a hash-partitioned join stage on the workers (``join_stage`` decides and rewrites the residual, ``hashing``
cuts each split's rows by the join keys, ``join_feed`` runs both stages).
"""

from gateway.distributed.decide import Distribution, Stage, decide
from gateway.distributed.descriptors import SourceSpec, SplitResult, SplitTask
from gateway.distributed.executors import Executor, LocalExecutor, RayExecutor, TaskLost
from gateway.distributed.feed import DistributedFeed
from gateway.distributed.runtime import Distributor

__all__ = [
    "DistributedFeed", "Distribution", "Distributor", "Executor", "LocalExecutor", "RayExecutor", "SourceSpec",
    "SplitResult", "SplitTask", "Stage", "TaskLost", "decide",
]
