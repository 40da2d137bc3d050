"""Project hooks: the checks that must run before any node does."""

from __future__ import annotations

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl

from rating_prediction.parameters import ProjectParameters, parse


class ParameterCheckHooks:
    """Checks every parameter once the context exists, so a misspelt key or a
    degenerate value stops ``kedro run`` (or ``kedro jupyter``) before any node writes,
    with a message naming the key."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        parse(ProjectParameters, context.params, "")
