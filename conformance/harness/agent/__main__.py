"""The agent's entry point: the kit runs this folder by path with the target's interpreter.

It takes this folder off ``sys.path``, loads the sibling modules as the private package
``_socketserver_conformance_agent`` (the package docstring says why), and runs the agent.
This folder holds no module named like a standard library one, so the imports below are
the standard library's even while the folder is still on ``sys.path``.
"""

import importlib
import importlib.util
import os
import sys

PACKAGE = "_socketserver_conformance_agent"
FOLDER = os.path.dirname(os.path.realpath(__file__))


def _drop_own_folder():
    # Run by path, this folder is sys.path[0] (unless -I or PYTHONSAFEPATH left it out):
    # there, its modules could shadow the user's, as `import handlers`.
    if sys.path and os.path.realpath(sys.path[0] or os.curdir) == FOLDER:
        del sys.path[0]


def _load_package():
    """This folder as the package PACKAGE: its submodules are found through the package's
    ``__path__``, never through ``sys.path``."""
    spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(FOLDER, "__init__.py"), submodule_search_locations=[FOLDER])
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    return package


def run():
    _drop_own_folder()
    _load_package()
    # Every agent module is imported here, before main() runs a prelude: what they capture
    # at import time (the real select.select) is the unpatched standard library.
    code = importlib.import_module(PACKAGE + ".main").main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Leftover handler threads must not keep a finished agent alive.
    os._exit(code)


if __name__ == "__main__":
    run()
