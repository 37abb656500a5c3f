"""The file formats: one declared schema, safe reading, crash-safe writing, every field checked.

`schema` writes the formats down once; `safe_load` / `atomic` read and write `torch.save` files;
`trust` decides what a file may make us import; `model_import` rebuilds models from their metadata;
`checkpoint`, `rng`, `resume` read and check trainer checkpoints and history files;
`lightning_ckpt` converts to and from Lightning `.ckpt` files.
"""
