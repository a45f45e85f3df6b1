"""The settings dialog, generated from the declared settings (:data:`SPECS`)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from photosim.gui.settings import SPECS, AppSettings


class SettingsDialog(QDialog):
    """Edit every declared setting; OK stores them."""

    def __init__(self, settings: AppSettings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings — photosim")
        self.settings = settings
        self.editors: dict[str, QWidget] = {}
        form = QFormLayout()
        for spec in SPECS:
            value = settings.get(spec.key)
            editor: QWidget
            if spec.choices:
                editor = QComboBox(self)
                editor.addItems(list(spec.choices))
                editor.setCurrentText(str(value))
            elif spec.type is int:
                editor = QSpinBox(self)
                editor.setRange(int(spec.minimum), int(spec.maximum))
                editor.setValue(int(value))
            elif spec.type is float:
                editor = QDoubleSpinBox(self)
                editor.setDecimals(2)
                editor.setSingleStep(0.01)
                editor.setRange(spec.minimum, spec.maximum)
                editor.setValue(float(value))
            else:
                editor = QLineEdit(str(value), self)
            editor.setToolTip(spec.help)
            editor.setObjectName(spec.key)
            self.editors[spec.key] = editor
            form.addRow(spec.label, editor)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def value(self, key: str) -> Any:
        """The edited value of one setting."""
        editor = self.editors[key]
        if isinstance(editor, QComboBox):
            return editor.currentText()
        if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
            return editor.value()
        return editor.text()

    def accept(self) -> None:
        for spec in SPECS:
            self.settings.set(spec.key, self.value(spec.key))
        super().accept()
