"""Typed, validated parameters: one module per section of ``conf/base/parameters_<section>.yml``.

Each node receives its section as a typed model (Kedro's typed parameters), so a stage imports
and DVC watches only its own section's module. ``run.validate_parameters`` checks every section
and how they fit together once, before any work. The YAML files are the one source of values:
the models carry no defaults.
"""
