"""In-memory, boto3-shaped DynamoDB and SQS for the simulation, checked against moto.

Why not moto: in process it is over 100 times slower on the simulation's own calls. The
100,000-document backlog (``python -m sim backlog --sizes 100000``) makes 3.35 million DynamoDB
and SQS calls. Replayed on both by ``python -m bench.aws_models`` (2 cores, busy, 2026-12-07),
moto serves 230-290 calls per CPU second (110-200 per wall second there), this package
30,000-36,000 (about 30 us a call): the backlog's calls alone take moto 3 h 10 min to 3 h 25 min
of CPU (tables of 0 to 100,000 items; 4.5-8 h of wall time there), this package under 2 min.
The whole backlog took 41 min of wall time, 21.5 min of CPU, on this package (3.6 h of CPU
projected on moto); the issue allowed moto 15 minutes, so this package runs the simulation.
"""

from sim.aws.dynamodb import DynamoDBUsage, InMemoryDynamoDB
from sim.aws.expressions import ExpressionError
from sim.aws.sqs import InMemorySqs, SqsUsage

__all__ = ["DynamoDBUsage", "ExpressionError", "InMemoryDynamoDB", "InMemorySqs", "SqsUsage"]
