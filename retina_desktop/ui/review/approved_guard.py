"""Asking before an approved image changes: the brush, undo, Fill, the vessel tools and the copy brush all ask
this one guard, so an approved image never drops to "edited" silently, whatever tool edits it."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ...core.review.review_session import ReviewSession
from ..common.prompter import Prompter


class ApprovedImageGuard(QObject):
    message = Signal(str, str)  # text, level

    def __init__(self, review: ReviewSession, prompter: Prompter, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.review, self.prompter = review, prompter

    def may_edit(self) -> bool:
        """True when the open mask may be changed; an approved image asks first (once per opening)."""
        r = self.review
        if r.image is None or not r.needs_edit_confirmation():
            return True
        name = r.image.entry.name
        if self.prompter.confirm(
            "Edit an approved image?",
            f'{name} is approved. Editing it makes it "edited": it needs approving again and '
            "stays out of fine-tuning until then. Undoing every edit makes it approved again.",
            ok_text="Edit it",
            object_name="edit_approved_prompt",
        ):
            r.confirm_edit()
            return True
        self.message.emit(f"{name} is approved; nothing was changed.", "info")
        return False
