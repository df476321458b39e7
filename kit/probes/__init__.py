"""Probes: small functions that look at the kernel from one particular place.

A probe is a plain Python function returning JSON-able data. It runs either

* **inside a finished container** (``spec.kit.probe = "kit.probes.escape:escape_from_container"``):
  the container process calls it instead of exec'ing a program, and the launcher returns what
  it returned as ``ExitStatus.result``; or
* **in a fresh child interpreter on the host** (:mod:`kit.probes.experiment`), for
  demonstrations that must change a process's root or namespaces (chroot, unshare) without
  touching the caller, which may be a multi-threaded program such as the TUI.

Probes only import what the interpreter already has (``os``, ``json`` and kit's own syscall
layer) at module level: a container probe runs after pivot_root, when the host's Python files
are out of reach, so importing inside a probe function would fail.

Modules: :mod:`~kit.probes.experiment` (the host-side runner), :mod:`~kit.probes.escape`
(chroot escapes), :mod:`~kit.probes.propagation` (mount propagation between namespaces),
:mod:`~kit.probes.pivot` (pivot_root's preconditions), :mod:`~kit.probes.overlay` (an overlay
mounted by hand), :mod:`~kit.probes.enter` (join a container's namespaces, as nsenter does).
"""
