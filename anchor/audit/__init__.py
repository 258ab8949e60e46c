"""The audit stage: what an auditor asks of the as-run log, read from it and never written to it.

- verify.py: walk the seal chain and name the first row that was edited, deleted or slipped in;
- export.py: a signed, self-checking export of a period (CSV + manifest.json + manifest.sig), and its offline
  verification;
- report.py: the monthly broadcast report per channel, as a PDF;
- evidence.py: the exact audio that aired, kept by its hash for [audit] evidence_days.

Each module imports what it needs (sqlalchemy, cryptography, fpdf2) itself: importing this package is free.
"""

from __future__ import annotations


class AuditError(Exception):
    """An audit could not be done, or found something wrong; the message says what, where, and what to do."""
