"""A CycloneDX 1.5 JSON SBOM of the installed distributions: components, licenses, dependency graph."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aigentflow.enterprise.vendors.inventory import Distribution, closure, depends_on
from aigentflow.enterprise.vendors.licenses import UNKNOWN, license_of

SPEC_VERSION = "1.5"


def _licenses(dist: Distribution) -> list[dict[str, Any]]:
    """CycloneDX ``licenses``: one SPDX id as ``license.id``, an expression as ``expression``, an
    unrecognised text as ``license.name``; nothing when no license is named."""
    info = license_of(dist)
    if info.expression == UNKNOWN:
        return []
    if any(op in info.expression.split() for op in ("AND", "OR", "WITH")):
        return [{"expression": info.expression}]
    return [{"license": {"id": info.expression}}]


def _component(dist: Distribution) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": "library", "bom-ref": dist.purl, "name": dist.name, "version": dist.version, "purl": dist.purl,
    }
    if dist.summary:
        component["description"] = dist.summary
    if licenses := _licenses(dist):
        component["licenses"] = licenses
    if dist.homepage.startswith(("http://", "https://")):
        component["externalReferences"] = [{"type": "website", "url": dist.homepage}]
    return component


def build_sbom(dists: dict[str, Distribution], root: str = "aigentflow", tool_version: str = "") -> dict[str, Any]:
    """The SBOM of every installed distribution; ``root`` (when installed) is the BOM's subject,
    ``metadata.component``, and the graph follows the extras each distribution is required with."""
    extras = closure(dists, root) if root in dists else {}
    components = [_component(dist) for key, dist in sorted(dists.items()) if key != root]
    dependencies = [
        {"ref": dist.purl, "dependsOn": [dists[child].purl for child in depends_on(dists, key, extras.get(key, ()))]}
        for key, dist in sorted(dists.items())
    ]
    metadata: dict[str, Any] = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tools": {"components": [{"type": "application", "name": "aigentflow", "version": tool_version}]},
    }
    if root in dists:
        metadata["component"] = {**_component(dists[root]), "type": "application"}
    return {
        "bomFormat": "CycloneDX", "specVersion": SPEC_VERSION, "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1, "metadata": metadata, "components": components, "dependencies": dependencies,
    }


def check_sbom(bom: dict[str, Any]) -> list[str]:
    """What makes ``bom`` not a structurally valid CycloneDX 1.5 BOM (empty: valid): the required
    fields, the serial number's form, unique ``bom-ref`` values, and graph references that resolve."""
    import re

    problems = []
    if bom.get("bomFormat") != "CycloneDX":
        problems.append("bomFormat is not CycloneDX")
    if bom.get("specVersion") != SPEC_VERSION:
        problems.append(f"specVersion is not {SPEC_VERSION}")
    if not re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        str(bom.get("serialNumber", ""))):
        problems.append("serialNumber is not an RFC 4122 urn:uuid")
    components = list(bom.get("components") or [])
    subject = (bom.get("metadata") or {}).get("component")
    refs = [c.get("bom-ref") for c in [*components, *([subject] if subject else [])]]
    if len(refs) != len(set(refs)):
        problems.append("bom-ref values are not unique")
    for component in components:
        if component.get("type") not in ("application", "framework", "library", "container", "platform",
                                         "operating-system", "device", "device-driver", "firmware", "file",
                                         "machine-learning-model", "data"):
            problems.append(f"component {component.get('name')} has no valid type")
        if not component.get("name"):
            problems.append("a component has no name")
    known = set(refs)
    for dependency in bom.get("dependencies") or []:
        for ref in [dependency.get("ref"), *(dependency.get("dependsOn") or [])]:
            if ref not in known:
                problems.append(f"dependency graph names {ref}, which is no component")
    return problems
