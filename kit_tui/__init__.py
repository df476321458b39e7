"""kit's tutorial as a Textual app. ``tui.py`` at the top of the repository is the entry point.

* :mod:`kit_tui.app` — :class:`KitApp`: services (progress, sessions, doctor, the shell).
* :mod:`kit_tui.screens` — the main screen (coordinates the widgets and the engine workers),
  the doctor's "cannot run containers" screen, the predict and confirm dialogs.
* :mod:`kit_tui.widgets` — the lesson list, step list, prose, visual panes and syscall log.
* :mod:`kit_tui.messages` — the small dataclass messages workers send to the screen.
* :mod:`kit_tui.commands` — command palette: jump to any lesson.
* :mod:`kit_tui.viewmodel` — labels and rules (what is done, what may come next) as plain
  text, without Textual, tested on their own.
* ``app.tcss`` — the styles.

Engine work (starting containers, checks, resets) runs in thread workers; the UI thread never
waits for the kernel. The lessons themselves live in :mod:`lessons`, which knows nothing of
Textual.
"""
