"""Vendor security: the vendor register and SLA monitoring, dependency scanning against OSV records,
license compliance and a CycloneDX SBOM (see README.md)."""
