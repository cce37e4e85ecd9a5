"""The platform's library: data, models and search spaces, search, training, export, drift.

Plain typed Python with no orchestration or versioning imports, so every piece can be tested
without a server (see DESIGN.md, principle 1).
"""

from components import lean_imports

lean_imports.install()
