"""Compliance dashboards (issue 18): SOC 2 controls, evidence, attestations, audit reports."""
