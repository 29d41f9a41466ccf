"""The config: `model` (YAML -> validated SyncdConfig), `types` (durations, caps),
`secrets` (inline or `*_file`). Import from the modules: this package imports
nothing itself, so a source's config can use `types` without loading them all."""
