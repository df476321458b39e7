"""The controls that limit what a container may do: each module is one control.

Every control here is a setting in the spec, applied by a named stage of the init
(:mod:`kit.runtime.pipeline`), and proved by a probe that watches the kernel enforce it.
"""
