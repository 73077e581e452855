"""tinyhil's options (:mod:`.table`) and the settings they resolve into (:mod:`.resolve`)."""

from plugins.settings.resolve import Settings, SettingsError, build_settings, expand_networks, expand_techniques
from plugins.settings.table import GROUPS, OPTIONS, Option

__all__ = [
    "GROUPS",
    "OPTIONS",
    "Option",
    "Settings",
    "SettingsError",
    "build_settings",
    "expand_networks",
    "expand_techniques",
]
