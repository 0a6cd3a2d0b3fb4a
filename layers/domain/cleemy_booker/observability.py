"""One Logger, Tracer and Metrics for the whole package (Powertools), named once.

The service name and metrics namespace come from Powertools' own environment variables
(``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``), set in the template.
Responses are never captured in traces: they hold invoice data and request ids, and the
Lucca client keeps the API key out of every request it could record.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(log_uncaught_exceptions=True)
tracer = Tracer(auto_patch=True)
metrics = Metrics()
