"""Every git operation aigentflow performs, hardened for repositories it does not trust.

- ``runner.py``: the one way git is run (hooks off, no prompts, no pager, ``--`` before paths) and
  the cross-process lock that serialises mutations of one repository.
- ``names.py``: branch names from run, feature and task ids, and the check every name passes.
- ``worktrees.py``: the feature branch and a worktree per task under ``.aigentflow/worktrees/``.
- ``merge.py``: conflict prediction without a working tree (``git merge-tree --write-tree``) and
  merges that move a branch atomically.
- ``bundle.py``: moving commits between nodes through the object store, without a shared filesystem.

Nothing here imports Ray or a model library.
"""
