"""The harness agent: runs inside the target interpreter and reports what handlers observe.

The kit starts this folder by path with the target's own interpreter (CPython 3.6 and newer,
PyPy3): ``python -u .../conformance/harness/agent --impl ...``, which runs ``__main__.py``.
So every module here uses the standard library only and no syntax newer than 3.6. The kit
never trusts its own process with the implementation under test, and never unpickles
anything from here: both directions are JSON, one object per line (see ``protocol``).

Modules, one concern each:
  __main__         the entry point run by path; loads the others as described below
  main             command line, loading the prelude and the implementation, the request loop
  protocol         the kit's side of the wire: JSON line I/O, value encoding, op dispatch
  state            the agent's servers and tasks, and the ops that act on them
  tasks            calls into the implementation, each bounded in a thread of its own
  teardown         stopping a server whatever its shutdown() and server_close() do
  forks            the cap on the processes the target forks, and their end with the agent
  events           the handlers' event channel: emitting events and collecting them
  handlers         the handler kinds the kit asks for (echo, lines, ...) and their options
  instrumentation  the server subclasses whose request-handling methods report their calls
  inspection       what the kit cannot see from outside: sockets, /proc, children, zombies
  loading          importing modules and attributes by name or by file
  measuring        coverage.py in the harness (--coverage), imported only when asked

Why a package loaded under a private name: the agent shares its interpreter with the user's
implementation, whose own modules may well be called ``handlers`` or ``protocol``. Run by
path, this folder would be ``sys.path[0]``, so plain ``import handlers`` here could pick up a
user's module, and a user's ``import protocol`` could pick up ours. ``__main__`` therefore
drops this folder from ``sys.path`` before importing anything, and loads these modules as
submodules of one package, ``_socketserver_conformance_agent``, whose ``__path__`` is this
folder: they import each other with relative imports only, they are found through that
package and never through ``sys.path``, and no user module can shadow them or be shadowed by
them. The same files import as ``conformance.harness.agent.*`` in the kit's own interpreter.
"""
