"""GDPR operations: data subject requests (export, erase), consent, retention, the Article 30 record.
See ``README.md`` in this folder."""
