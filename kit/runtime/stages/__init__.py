"""The stages of container creation, one module each, in the order kit runs them.

Every stage is a function ``run(ctx: InitContext) -> None`` with a module docstring that says
what the stage is for; :mod:`kit.runtime.pipeline` lists them in order, emits their start/end
events and pauses between them when asked.
"""
