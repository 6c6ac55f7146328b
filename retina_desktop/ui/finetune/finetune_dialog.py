"""The Fine-tune dialog: what will be trained on, where, for how long; one click starts the run."""

from __future__ import annotations

import math

from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.model.finetune_job import (
    DEFAULT_EPOCHS,
    DEFAULT_MINUTES,
    START_S,
    budget_overrides,
    estimate_epochs,
    estimate_seconds,
)

TEXT_WIDTH_CHARS = 52  # the value column wraps at about this many characters instead of being clipped


def fmt_duration(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


class _WrappedLabel(QLabel):
    """A word-wrapped label that asks for the height its text needs at its minimum width: a dialog's
    layout does not take wrapped heights into account by itself, and cuts such labels off."""

    def __init__(self, text: str, width: int, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setMinimumWidth(width)
        self.setText(text)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setMinimumHeight(self.heightForWidth(self.minimumWidth()))


def _config_overrides() -> dict:
    # Looked up at call time: the tests shrink runs by replacing finetune_panel.CONFIG_OVERRIDES.
    from . import finetune_panel

    return finetune_panel.CONFIG_OVERRIDES


class FinetuneDialog(QDialog):
    """How many corrections, the split, the device, the budget and an estimated duration; one click starts.

    With ``settings`` (``AppSettings``) the budget starts at the one last started with, and is remembered
    when the grader starts a run.
    """

    def __init__(
        self,
        parent,
        n_images: int,
        split_note: str,
        parent_label: str,
        device_type: str,
        device_text: str,
        settings=None,
    ):
        super().__init__(parent)
        self.setObjectName("finetune_dialog")
        self.setWindowTitle("Fine-tune the model")
        self.device_type = device_type
        self.n_images = n_images
        self.settings = settings
        self.step_s: float | None = None
        text_width = self.fontMetrics().averageCharWidth() * TEXT_WIDTH_CHARS
        lay = QVBoxLayout(self)
        # The dialog grows with its wrapped texts (the estimate arrives after it is shown) instead of
        # cutting them off.
        lay.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        def value(text: str, name: str = "") -> QLabel:
            label = _WrappedLabel(text, text_width, self)
            if name:
                label.setObjectName(name)
            return label

        self.images_label = value(
            f"{n_images} corrected and approved image{'s' if n_images != 1 else ''}", "ft_images_label"
        )
        self.split_label = value(split_note, "ft_split_label")
        self.parent_label = value(parent_label, "ft_parent_label")
        self.device_label = value(device_text, "ft_device_label")
        form.addRow("Training data", self.images_label)
        form.addRow("Validation", self.split_label)
        form.addRow("Starting from", self.parent_label)
        form.addRow("Device", self.device_label)
        form.addRow("Budget", self._budget_widget())
        self.estimate_label = value("measuring the speed of this device…", "ft_estimate_label")
        form.addRow("Estimated duration", self.estimate_label)
        lay.addLayout(form)
        note = value(
            "Training runs in the background: you can keep reviewing. The new model becomes active only "
            "if it scores at least as well as the current one on the held-out images."
        )
        lay.addWidget(note)
        lay.addWidget(self._button_box(can_start=n_images > 0))
        self.accepted.connect(self._remember_budget)
        if n_images == 0:
            self.estimate_label.setText("–")

    def _button_box(self, can_start: bool) -> QDialogButtonBox:
        """Cancel, and Start (the default button), which needs at least one approved correction."""
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.start_button = QPushButton("Start fine-tuning", self)
        self.start_button.setObjectName("ft_start_button")
        self.start_button.setDefault(True)
        self.start_button.setEnabled(can_start)
        self.buttons.addButton(self.start_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        return self.buttons

    def _budget_widget(self) -> QWidget:
        budget = QWidget(self)
        bl = QVBoxLayout(budget)
        bl.setContentsMargins(0, 0, 0, 0)
        s = self.settings
        self.time_radio = QRadioButton("Time budget")
        self.minutes_spin = QSpinBox()
        self.minutes_spin.setRange(1, 24 * 60)
        self.minutes_spin.setSuffix(" min")
        remembered = s.finetune_minutes if s is not None else 0  # 0: never chosen, the device's default
        self.minutes_spin.setValue(remembered or int(DEFAULT_MINUTES.get(self.device_type, 10)))
        self.epochs_radio = QRadioButton("Epochs")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.epochs_spin.setValue(s.finetune_epochs if s is not None else DEFAULT_EPOCHS)
        group = QButtonGroup(self)
        for r in (self.time_radio, self.epochs_radio):
            group.addButton(r)
        (self.epochs_radio if s is not None and s.finetune_by_epochs else self.time_radio).setChecked(True)
        for radio, spin in ((self.time_radio, self.minutes_spin), (self.epochs_radio, self.epochs_spin)):
            row = QHBoxLayout()
            row.addWidget(radio)
            row.addWidget(spin)
            row.addStretch(1)
            bl.addLayout(row)
            spin.valueChanged.connect(self._update_estimate)
            radio.toggled.connect(self._update_estimate)
        return budget

    def _remember_budget(self) -> None:
        if self.settings is None:
            return
        self.settings.finetune_by_epochs = self.epochs_radio.isChecked()
        self.settings.finetune_minutes = self.minutes_spin.value()
        self.settings.finetune_epochs = self.epochs_spin.value()

    def overrides(self) -> dict:
        if self.epochs_radio.isChecked():
            base = budget_overrides(self.device_type, epochs=self.epochs_spin.value())
        else:
            base = budget_overrides(self.device_type, minutes=self.minutes_spin.value())
        return {**base, **_config_overrides()}

    def set_step_seconds(self, step_s: float | None, error: str | None = None) -> None:
        self.step_s = step_s
        if error:
            self.estimate_label.setText(f"could not be measured ({error})")
            return
        self._update_estimate()

    def _update_estimate(self, *_):
        if self.step_s is None or not math.isfinite(self.step_s) or self.n_images == 0:
            return
        from model_core.finetune import finetune_config

        ov = self.overrides()
        cfg = finetune_config(**ov)
        est, epochs = estimate_seconds(self.step_s, ov), estimate_epochs(self.step_s, ov)
        steps = f"{epochs} epoch{'s' if epochs != 1 else ''} of {cfg.steps_per_epoch} steps"
        if cfg.minutes:
            fits = "fits" if epochs == 1 else "fit"
            if est - START_S > cfg.minutes * 60:
                fits = "(longer than the budget: a run always completes one epoch)"
            self.estimate_label.setText(
                f"up to {fmt_duration(est)}: ≈ {steps} {fits} at {self.step_s:.2f} s/step; "
                "stops earlier when validation Dice stops improving"
            )
        else:
            self.estimate_label.setText(f"≈ {fmt_duration(est)}: {steps} at {self.step_s:.2f} s/step; may stop earlier")
