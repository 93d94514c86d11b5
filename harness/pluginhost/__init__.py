"""Plugin loading: the kinds table, one registry per kind, entry-point loading and listing."""

from llbench.pluginhost.host import GROUP, PluginHost, PluginInfo, get_host, reset_host
from llbench.pluginhost.kinds import KINDS, Kind

__all__ = ["GROUP", "KINDS", "Kind", "PluginHost", "PluginInfo", "get_host", "reset_host"]
