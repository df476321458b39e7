"""System calls kit makes, as ctypes wrappers that trace themselves and explain failures.

Only this package talks to libc directly. Each wrapper records a trace event with its arguments
rendered symbolically (``CLONE_NEWNS|CLONE_NEWPID``) and turns a failure into a
:class:`kit.errors.KitError` with the errno, the likely cause and the fix.
"""
