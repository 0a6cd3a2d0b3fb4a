"""In-memory, boto3-shaped DynamoDB and SQS for the simulation, checked against moto."""

from sim.aws.dynamodb import DynamoDBUsage, InMemoryDynamoDB
from sim.aws.expressions import ExpressionError
from sim.aws.sqs import InMemorySqs, SqsUsage

__all__ = ["DynamoDBUsage", "ExpressionError", "InMemoryDynamoDB", "InMemorySqs", "SqsUsage"]
