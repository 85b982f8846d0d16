"""Built-in getters; importing this package registers them."""

from scoring.getters import (  # noqa: F401
    chrome_html,
    chrome_profile,
    chrome_tabs,
    chrome_url,
    commands,
    desktop,
    files,
    impress,
    rules,
    time_range,
    vlc,
    vscode,
    wallpaper,
)
