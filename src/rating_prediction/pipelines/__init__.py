"""One package per pipeline: ``nodes.py`` (thin functions) and ``pipeline.py``.

Kedro reserves dotted dataset names (``biased_mf.model_config``) for a namespace's own
nodes: a node outside the namespace that reads one gets a warning. So a namespace
hands what other nodes read out of it under a plain name, :func:`handed_out`.
"""


def handed_out(namespace: str, dataset: str) -> str:
    """The plain name under which the ``namespace`` pipeline hands ``dataset`` to the
    nodes outside it: ``<namespace>_<dataset>``."""
    return f"{namespace}_{dataset}"
