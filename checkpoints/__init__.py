"""Reading TVLT checkpoints, for every command and for the converter (package-only: no Hub code file imports this).

`layout`: the files of a checkpoint folder. `errors`: `CheckpointError`, the one-line error of a checkpoint that
cannot be used. `preflight`: the config compared with the weight files' headers on the meta device, before anything
is allocated. `hub`: whether a Hub repo must be read from the local cache only. `loading`: a command's `--model`
(its config, its kind, its weights checked). `layout`, `errors` and `loading` import no torch at module level, so the
command line checks its arguments before the heavy imports.
"""
