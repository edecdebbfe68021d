"""Importing what the kit names: the implementation, the prelude and a user's handler."""

import importlib
import importlib.util
import os
import sys


def _is_file(name):
    return name.endswith(".py") or os.sep in name


def import_module(name):
    """A module by dotted name, or by the path of a .py file (its folder importable)."""
    if _is_file(name):
        folder = os.path.dirname(os.path.abspath(name))
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(
            os.path.splitext(os.path.basename(name))[0], name)
        if spec is None:
            raise ImportError("cannot load %s" % name)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(name)


def module_origin(name):
    """The source file that ``import_module(name)`` would run, found without running it
    (a dotted name's parent packages are imported, as its import would); None when there
    is none (no such module, or one without a file)."""
    if _is_file(name):
        return os.path.abspath(name)
    spec = importlib.util.find_spec(name)
    return spec.origin if spec is not None and spec.has_location else None


def import_attribute(spec):
    """``module:attribute.path``, the module named or given as a file."""
    module_name, _, attribute = spec.rpartition(":")
    value = import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value
