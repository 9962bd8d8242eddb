"""The notebook panel's fault buttons: the same actions as `lab fault`, on the fault proxy (or a
real Toxiproxy) at LAB_FAULTS_URL, for whichever service is picked, and the named presets of
`lab fault apply` (on their own services). Greyed out, with the command that starts one, when no
fault proxy answers."""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as w

from lab.config import Settings
from lab.ops.faults import presets
from lab.ops.faults.client import FaultApiError, FaultClient
from lab.ops.faults.toxics import describe

SLOW_MS = 200


class FaultControls(w.VBox):
    def __init__(self, settings: Settings):
        self.client = FaultClient.of(settings, timeout_s=3.0)
        self.proxy = w.Dropdown(options=[], description="service")
        self.slow_button = w.Button(description=f"Slow +{SLOW_MS} ms", icon="hourglass")
        self.blackhole_button = w.Button(description="Blackhole", button_style="warning")
        self.disable_button = w.Button(description="Disable", button_style="danger")
        self.heal_button = w.Button(description="Heal", button_style="success")
        self.reset_button = w.Button(description="Reset all", tooltip="every toxic removed")
        self.preset = w.Dropdown(
            options=[(f"{name}: {about}", name) for name, (about, parts) in presets.PRESETS.items()
                     if parts],
            description="preset",
        )  # fmt: skip
        self.preset_button = w.Button(
            description="Apply preset", icon="bolt", tooltip="on every proxy of its services"
        )
        self.state_html = w.HTML()
        on_picked = (self.slow_button, self.blackhole_button, self.disable_button,
                     self.heal_button, self.reset_button)  # fmt: skip
        self.buttons = (*on_picked, self.preset_button)
        actions = {
            self.slow_button: lambda name: self.client.add_toxic(
                name, "latency", {"latency": SLOW_MS}, name=f"slow_{SLOW_MS}ms"
            ),
            self.blackhole_button: self.client.blackhole,
            self.disable_button: self.client.disable,
            self.heal_button: self.client.heal,
            self.reset_button: lambda _name: self.client.reset(),
            self.preset_button: lambda _name: presets.apply(self.client, self.preset.value),
        }
        for button, action in actions.items():
            button.on_click(lambda _b, act=action: self._in_background(act))
        super().__init__(
            [
                w.HBox([w.HTML("<b>Faults</b>"), self.proxy, *on_picked]),
                w.HBox([self.preset, self.preset_button]),
                self.state_html,
            ]
        )
        self._in_background(None)

    def _in_background(self, action: Any) -> None:
        """Acts off the kernel's thread (a blackholed service must not freeze the notebook)."""
        threading.Thread(target=self.act, args=(action,), daemon=True).start()

    def act(self, action: Any) -> None:
        """Run `action(proxy name)` (None: only look), then show what is in force."""
        try:
            if action is not None and self.proxy.value:
                action(self.proxy.value)
            self.refresh()
        except (FaultApiError, presets.PresetError) as exc:  # a preset names a missing proxy
            self.state_html.value = f'<span style="color:#b42318">{html.escape(str(exc))}</span>'

    def refresh(self) -> dict[str, Any]:
        """The proxies and their toxics, shown; buttons greyed out when none answers."""
        try:
            proxies = self.client.proxies()
        except FaultApiError:
            for button in self.buttons:
                button.disabled = True
            self.state_html.value = (
                '<span style="color:#667085">no fault proxy answers; lab stack up --with faults '
                "starts one</span>"
            )
            return {}
        names = sorted(proxies)
        if list(self.proxy.options) != names:
            self.proxy.options = names
        for button in self.buttons:
            button.disabled = not names
        # Names and toxics are what a server said: escaped, as every value put in HTML here.
        in_force = [
            f"<b>{html.escape(n)}</b>: "
            + ("disabled, " if p.get("enabled") is False else "")
            + html.escape(", ".join(describe(t) for t in p.get("toxics") or []) or "–")
            for n, p in sorted(proxies.items())
            if p.get("toxics") or p.get("enabled") is False
        ]
        self.state_html.value = (
            " · ".join(in_force) or '<span style="color:#667085">no faults</span>'
        )
        return proxies
