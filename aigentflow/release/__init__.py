"""Releases: the next version from the project's version and its commits, a CHANGELOG.md section from
the runs' history, a commit and an annotated tag on the integration branch, and a record in the store.

Versions are semantic (``X.Y.Z`` or ``X.Y.Z-pre.1``, no ``+build``); tags are ``<git.tag_prefix>X.Y.Z``.
The next version, unless one is given with ``--version``:

- it starts from the higher of the latest release tag on the branch (``<prefix>X.Y.Z``, ``vX.Y.Z``
  or ``X.Y.Z``) and the version the project declares at the branch head (``release.declared``:
  pyproject.toml, setup.cfg, package.json, ``__version__``; PEP 440 forms are mapped as
  ``release.versions`` says), and says which; with neither, the first release is 0.1.0;
- a breaking change bumps the major version, a feature the minor, a fix the patch; how commits,
  conventional or not, are grouped and what each group bumps is in ``release.commits``;
- before 1.0.0 the API is not stable yet: a breaking change bumps the minor (0.3.2 -> 0.4.0), and
  1.0.0 is only reached by asking for it (``--version 1.0.0``);
- after a pre-release (1.0.0-rc.1, or a declared 1.0.0rc1) any releasable commit gives its release
  (1.0.0).

The changelog commit is built in a temporary index (no working tree is touched) and the branch is
moved with ``move_branch``, so a checked-out integration branch follows and the user's working tree
ends clean. A crash between the commit and the tag is finished by running the release again: the
``chore(release): vX.Y.Z`` commit at the branch head is tagged and recorded, never made twice. The
release changes only CHANGELOG.md: a declared version that differs from the new one is pointed out.
"""

from __future__ import annotations

from aigentflow.release.commits import RELEASE_SUBJECT, Commit
from aigentflow.release.declared import Declared, declared_version
from aigentflow.release.plan import CHANGELOG, Base, ReleasePlan, plan_release
from aigentflow.release.publish import commit_changelog, publish, release
from aigentflow.release.versions import Version

__all__ = ["CHANGELOG", "RELEASE_SUBJECT", "Base", "Commit", "Declared", "ReleasePlan", "Version",
           "commit_changelog", "declared_version", "plan_release", "publish", "release"]
