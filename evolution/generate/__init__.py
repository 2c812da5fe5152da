"""Generation of new role versions (v2.0): ``aigentflow evolve``. See README.md."""
