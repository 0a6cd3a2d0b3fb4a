"""The commands a person runs beside the pipeline: ``cleemy-booker plan|audit|export|replay``.

They read Lucca (``plan``, listing requests only), the ledger (``audit``, ``export``) and the
dead-letter queue (``replay``) from an operator's machine. They import the domain package but
are not part of the Lambda layer: the functions never run them.
"""
